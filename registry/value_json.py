"""Handle values in the JSON of the Handle.Net REST API (handle-http-api.md §3). Pure.

Input is liberal, as Handle.Net's deserializer is: ``data`` as a bare string or ``{format, value}`` in
any of seven formats, indexes as numeric strings, permissions in several forms. Output is exactly the
server's: keys in Handle.Net's order, values sorted by index, timestamps always present.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from datetime import datetime, timezone
from typing import Any, Iterable

import orjson

from .encoding import DecodeError
from .errors import InvalidValue, ProtocolError
from .model import (
    DEFAULT_PERMISSIONS,
    DEFAULT_TTL,
    MAX_INDEX,
    TTL_ABSOLUTE,
    TTL_RELATIVE,
    HandleValue,
    ValueRef,
    integer_text,
)
from . import values as typed

SECRET_PERMISSIONS = 0x0C
_FORMATS = ("string", "base64", "hex", "admin", "vlist", "site", "key")


# --- input ---------------------------------------------------------------------------------------


def parse_values_body(body: Any) -> tuple[list[HandleValue], str | None]:
    """The values of a PUT body, and the ``handle`` it names if any.

    A body is an array of values, an object with ``values`` (and optionally ``handle``), a single
    value object, or ``null``.
    """
    named = None
    if body is None:
        items: Any = []
    elif isinstance(body, list):
        items = body
    elif isinstance(body, dict) and "values" in body:
        items = body["values"] if body["values"] is not None else []
        named = body.get("handle")
        if named is not None and not isinstance(named, str):
            raise ProtocolError("the body's 'handle' must be a string")
    elif isinstance(body, dict) and {"index", "type", "data"} <= body.keys():
        items = [body]
    else:
        raise ProtocolError("the body must be an array of values, {\"values\": [...]}, or one value object")
    if not isinstance(items, list):
        raise ProtocolError("'values' must be an array")
    return [parse_value(item) for item in items], named


def parse_value(item: Any) -> HandleValue:
    if not isinstance(item, dict):
        raise ProtocolError(f"a value must be a JSON object, not {_brief(item)}")
    missing = [k for k in ("index", "type", "data") if k not in item]
    if missing:
        raise ProtocolError(f"a value is missing {', '.join(repr(m) for m in missing)}: {_brief(item)}")
    index = _parse_index(item["index"])
    value_type = item["type"]
    if not isinstance(value_type, str):
        raise ProtocolError(f"the type of value {index} must be a string")
    ttl_type, ttl = _parse_ttl(item.get("ttl", DEFAULT_TTL), index)
    return HandleValue(
        index=index,
        type=value_type,
        data=parse_data(item["data"], index),
        ttl=ttl,
        ttl_type=ttl_type,
        permissions=_parse_value_permissions(item.get("permissions"), index, secret=value_type.upper() == typed.SECKEY),
        references=_parse_references(item.get("references"), index),
    )


def _parse_index(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ProtocolError(f"index must be a number, not {raw!r}")
    if isinstance(raw, str) and integer_text(raw) is not None:
        raw = integer_text(raw)
    if not isinstance(raw, int):
        raise ProtocolError(f"index must be a number, not {_brief(raw)}")
    if raw <= 0:
        raise InvalidValue(f"Indexes must be positive: {raw}")
    if raw > MAX_INDEX:
        raise InvalidValue(f"index {raw} is larger than {MAX_INDEX}")
    return raw


def parse_data(data: Any, index: int) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8", "strict")
    if not isinstance(data, dict) or "value" not in data:
        raise ProtocolError(f"data of value {index} must be a string or {{\"format\": ..., \"value\": ...}}")
    fmt = str(data.get("format", "string")).lower()
    value = data["value"]
    try:
        return _DATA_PARSERS[fmt](value)
    except KeyError:
        raise ProtocolError(f"Unexpected type: data format {fmt!r} of value {index} is not one of {', '.join(_FORMATS)}") from None
    except InvalidValue as exc:
        raise InvalidValue(f"value {index}: {exc.message}") from None


def _string(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidValue("a string value must be a JSON string")
    return value.encode("utf-8")


def _base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidValue("a base64 value must be a JSON string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue("the base64 data is not valid base64") from None


def _hex(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidValue("a hex value must be a JSON string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidValue("the hex data is not valid hexadecimal") from None


_DATA_PARSERS = {
    "string": _string,
    "base64": _base64,
    "hex": _hex,
    "admin": lambda v: typed.admin_to_bytes(typed.admin_from_json(v)),
    "vlist": lambda v: typed.vlist_to_bytes(typed.vlist_from_json(v)),
    "site": lambda v: typed.SiteInfo.from_json(v).to_bytes(),
    "key": typed.jwk_to_pubkey,
}


def _parse_ttl(raw: Any, index: int) -> tuple[int, int]:
    if isinstance(raw, bool):
        raise InvalidValue(f"ttl of value {index} must be a number or a date")
    if isinstance(raw, (int, float)):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise InvalidValue(f"ttl of value {index} must be a finite number")
        return TTL_RELATIVE, int(raw)
    if isinstance(raw, str):
        if integer_text(raw) is not None:
            return TTL_RELATIVE, integer_text(raw)
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidValue(f"ttl {raw!r} of value {index} is neither seconds nor an ISO-8601 date") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return TTL_ABSOLUTE, int(when.timestamp())
    raise InvalidValue(f"ttl of value {index} must be a number or a date")


def _parse_value_permissions(raw: Any, index: int, *, secret: bool = False) -> int:
    """A string aligned to the right over the default ``1110``; ``*`` sets all four bits. An HS_SECKEY
    (``secret``) sent without permissions gets ``1100``, admin read and write only, as Handle.Net gives it."""
    if raw is None:
        return SECRET_PERMISSIONS if secret else DEFAULT_PERMISSIONS
    if raw == "*":
        return 0x0F
    if not isinstance(raw, str) or not raw or len(raw) > 4 or set(raw) - {"0", "1"}:
        raise InvalidValue(f"permissions {raw!r} of value {index} must be up to four 0s and 1s")
    width = len(raw)
    kept = DEFAULT_PERMISSIONS & ~((1 << width) - 1)
    return kept | int(raw, 2)


def _parse_references(raw: Any, index: int) -> tuple[ValueRef, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidValue(f"references of value {index} must be an array")
    refs = []
    for ref in raw:
        if not isinstance(ref, dict) or not isinstance(ref.get("handle"), str):
            raise InvalidValue(f"each reference of value {index} must be {{\"handle\": ..., \"index\": ...}}")
        ref_index = ref.get("index", 0)
        if isinstance(ref_index, bool) or not isinstance(ref_index, int) or not 0 <= ref_index <= MAX_INDEX:
            raise InvalidValue(f"reference index {ref_index!r} of value {index} must be a number from 0")
        refs.append(ValueRef(ref_index, ref["handle"]))
    return tuple(refs)


def _brief(item: Any) -> str:
    text = orjson.dumps(item).decode() if isinstance(item, (dict, list, str, int, float, bool, type(None))) else repr(item)
    return text if len(text) <= 80 else text[:77] + "..."


# --- output --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def iso_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def looks_textual(data: bytes) -> str | None:
    """The data as text, if it is UTF-8 without control characters other than tab and newlines."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _NOT_TEXT.search(text) else text


def data_to_json(value: HandleValue) -> dict[str, Any]:
    type_key = value.type_key
    try:
        if type_key == typed.ADMIN:
            return {"format": "admin", "value": typed.admin_to_json(typed.admin_from_bytes(value.data))}
        if type_key == typed.VLIST:
            return {"format": "vlist", "value": typed.vlist_to_json(typed.vlist_from_bytes(value.data))}
        if type_key in typed.SITE_TYPES:
            return {"format": "site", "value": typed.SiteInfo.from_bytes(value.data).to_json()}
        if type_key == typed.PUBKEY:
            return {"format": "key", "value": typed.pubkey_to_jwk(value.data)}
    except (DecodeError, InvalidValue):
        pass
    text = looks_textual(value.data)
    if text is not None:
        return {"format": "string", "value": text}
    return {"format": "base64", "value": base64.b64encode(value.data).decode("ascii")}


def value_to_json(value: HandleValue) -> dict[str, Any]:
    out: dict[str, Any] = {"index": value.index, "type": value.type, "data": data_to_json(value)}
    if value.permissions != DEFAULT_PERMISSIONS:
        out["permissions"] = format(value.permissions, "04b")
    out["ttl"] = iso_time(value.ttl) if value.ttl_type == TTL_ABSOLUTE else value.ttl
    if value.timestamp:
        out["timestamp"] = iso_time(value.timestamp)
    if value.references:
        out["references"] = [{"handle": r.handle, "index": r.index} for r in value.references]
    return out


def render_values(values: Iterable[HandleValue]) -> bytes:
    """The JSON array of values, in index order."""
    return orjson.dumps([value_to_json(v) for v in sorted(values, key=lambda v: v.index)])



def parse_answer_values(items: Any) -> list[HandleValue]:
    """The values of a resolution answer from another node, their timestamps kept (a PUT body's are not)."""
    if not isinstance(items, list):
        raise ProtocolError("'values' must be an array")
    return [_with_timestamp(parse_value(item), item) for item in items]


def _with_timestamp(value: HandleValue, item: dict[str, Any]) -> HandleValue:
    stamp = item.get("timestamp")
    if stamp is None:
        return value
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidValue(f"timestamp {stamp!r} of value {value.index} is not of the form 2026-11-24T13:28:22Z")
    return value.stamped(int(moment.timestamp()))
