"""What a value must be before it is stored. Pure and transport-free: the registrar calls it on every
write, and any other writer of client values must call it too.

Values are checked, never repaired: a value that passes is stored byte for byte as sent, one that does
not is refused with responseCode 202 (INVALID_VALUE) and a message naming the value and the rule.

- the type is not empty and holds no control character (C0, DEL or C1);
- the TTL is not negative (relative or absolute);
- every handle a value names (references, the HS_ADMIN handle, HS_VLIST members) is a handle
  ``prefix/suffix`` within the node's handle length limit, without control characters;
- the reserved types decode as their structure: HS_ADMIN, HS_VLIST, HS_SITE (and HS_SITE.PREFIX,
  HS_NA_DELEGATE) exactly, with every server key a usable public key and strings within
  ``MAX_SITE_TEXT``; HS_PUBKEY as a key that ``cryptography`` accepts; HS_CERT and HS_SIGNATURE as a JWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from .encoding import DecodeError
from .errors import InvalidValue
from .jws import JwsError, jws_form
from .model import DEFAULT_MAX_HANDLE_LENGTH, HandleValue
from .pubkeys import load_pubkey
from .values import (ADMIN, CERT, PUBKEY, SIGNATURE, SITE_TYPES, TRANSPORT_NAMES, VLIST, SiteInfo, admin_from_bytes,
                     vlist_from_bytes)

MAX_SITE_TEXT = 1024  # an HS_SITE attribute name or value, or its hash filter
MAX_PORT = 65535
CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # marks, embeddings, overrides, isolates
ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060\ufeff\u180e]")


@dataclass(frozen=True)
class ValueLimits:
    """The node's limits that values are checked against."""

    max_handle_length: int = DEFAULT_MAX_HANDLE_LENGTH


def check_values(values: Iterable[HandleValue], limits: ValueLimits = ValueLimits()) -> None:
    for value in values:
        check_value(value, limits)


def check_value(value: HandleValue, limits: ValueLimits = ValueLimits()) -> None:
    """InvalidValue unless ``value`` may be stored as it is."""
    where = f"value {value.index}"
    if not value.type.strip():
        raise InvalidValue(f"{where} has an empty type")
    control = CONTROLS.search(value.type)
    if control:
        raise InvalidValue(f"the type of {where} contains a control character ({codepoint(control.group())})")
    if value.ttl < 0:
        raise InvalidValue(f"the ttl of {where} is {value.ttl}: a ttl must not be negative")
    where = f"{where} ({value.type})"
    for ref in value.references:
        check_nested_handle(ref.handle, f"{where}: reference {brief(str(ref))}", limits)
        _check_ref_index(ref.index, f"{where}: reference {brief(str(ref))}")
    checker = _TYPED.get(value.type_key)
    if checker is not None:
        try:
            checker(value.data, where, limits)
        except (DecodeError, JwsError) as exc:
            hint = _HINTS.get(value.type_key, _HINTS["HS_SITE"])
            raise InvalidValue(f"{where}: the data is not a valid {value.type_key} value ({hint}): {exc.message}") from None


def nested_handles(value: HandleValue) -> list[tuple[str, str]]:
    """The handles a checked value names, each with where it sits: references, the HS_ADMIN handle,
    HS_VLIST members."""
    where = f"value {value.index} ({value.type})"
    found = [(f"{where}: reference {brief(str(ref))}", ref.handle) for ref in value.references]
    if value.type_key == ADMIN:
        found.append((f"{where}: admin handle", admin_from_bytes(value.data).ref.handle))
    elif value.type_key == VLIST:
        found.extend((f"{where}: member {brief(str(ref))}", ref.handle) for ref in vlist_from_bytes(value.data))
    return found


def codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def _escaped(char: str) -> str:
    if any(rule.match(char) for rule in (CONTROLS, BIDI, ZERO_WIDTH)) or not char.isprintable():
        return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"
    return char


def shown(text: str) -> str:
    """``text`` for a message: every character a reader could not see written as ``\\uXXXX``."""
    return "".join(_escaped(char) for char in text)


def brief(text: str, limit: int = 60) -> str:
    """``text`` shown, cut to ``limit`` characters."""
    return shown(text) if len(text) <= limit else shown(text[:limit]) + "…"


def check_nested_handle(text: str, where: str, limits: ValueLimits) -> None:
    prefix, slash, suffix = text.partition("/")
    if not (prefix and slash and suffix):
        raise InvalidValue(f"{where}: {brief(text)!r} is not a handle (prefix/suffix)")
    if len(text) > limits.max_handle_length:
        raise InvalidValue(f"{where}: the handle is {len(text)} characters long; the limit is {limits.max_handle_length}")
    control = CONTROLS.search(text)
    if control:
        raise InvalidValue(f"{where}: the handle contains a control character ({codepoint(control.group())})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue(f"{where}: the handle is not valid UTF-8") from None


def _check_ref_index(index: int, where: str) -> None:
    if index < 0:
        raise InvalidValue(f"{where}: index {index} is negative")


def _admin(data: bytes, where: str, limits: ValueLimits) -> None:
    grant = admin_from_bytes(data)
    check_nested_handle(grant.ref.handle, f"{where}: admin handle", limits)
    _check_ref_index(grant.ref.index, f"{where}: admin handle")


def _vlist(data: bytes, where: str, limits: ValueLimits) -> None:
    for ref in vlist_from_bytes(data):
        check_nested_handle(ref.handle, f"{where}: member {brief(str(ref))}", limits)
        _check_ref_index(ref.index, f"{where}: member {brief(str(ref))}")


def _site(data: bytes, where: str, limits: ValueLimits) -> None:
    site = SiteInfo.from_bytes(data)
    if site.to_bytes() != data:
        raise DecodeError("its flags or service types are outside Handle.Net's (flags 0x80 primary and 0x40 "
                          "multi-primary; service type 0–3: out of service, admin, query, admin and query)")
    texts = [("hash filter", site.hash_filter)]
    for name, value in site.attributes:
        texts += [(f"attribute name {brief(name, 40)!r}", name), (f"attribute {brief(name, 40)!r}", value)]
    for what, text in texts:
        if len(text) > MAX_SITE_TEXT:
            raise DecodeError(f"the {what} is {len(text)} characters long; the limit is {MAX_SITE_TEXT}")
    for server in site.servers:
        if server.public_key:
            try:
                load_pubkey(server.public_key)
            except InvalidValue as exc:
                raise DecodeError(f"the public key of server {server.server_id}: {exc.message}") from None
        for iface in server.interfaces:
            if iface.transport not in TRANSPORT_NAMES:
                raise DecodeError(f"server {server.server_id} has an interface with transport {iface.transport}; "
                                  "Handle.Net's are 0 UDP, 1 TCP, 2 HTTP, 3 HTTPS")
            if not 0 <= iface.port <= MAX_PORT:
                raise DecodeError(f"server {server.server_id} has an interface on port {iface.port}, outside 0–{MAX_PORT}")


def _pubkey(data: bytes, where: str, limits: ValueLimits) -> None:
    try:
        load_pubkey(data)
    except DecodeError:
        raise
    except InvalidValue as exc:
        raise DecodeError(exc.message) from None


def _jws(data: bytes, where: str, limits: ValueLimits) -> None:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise JwsError("a JWS is ASCII text") from None
    jws_form(text)


_HINTS = {
    ADMIN: 'send it as {"format": "admin", "value": {"handle", "index", "permissions"}}',
    VLIST: 'send it as {"format": "vlist", "value": [{"handle", "index"}, …]}',
    PUBKEY: 'send it as {"format": "key", "value": JWK}',
    CERT: "a JWS, as Handle.Net writes it",
    SIGNATURE: "a JWS, as Handle.Net writes it",
    "HS_SITE": 'send it as {"format": "site", "value": {…}}',
}

_TYPED: dict[str, Callable[[bytes, str, ValueLimits], None]] = {
    ADMIN: _admin,
    VLIST: _vlist,
    PUBKEY: _pubkey,
    CERT: _jws,
    SIGNATURE: _jws,
    **{site_type: _site for site_type in SITE_TYPES},
}

