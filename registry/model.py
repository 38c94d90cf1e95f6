"""Handles, values and records: parse, normalise, validate. Pure: no I/O, no clock, no environment.

A handle is ``prefix/suffix``. Handles compare case-insensitively with ASCII folding, as Handle.Net's
default configuration does: only ``a``–``z`` are folded, every other character is kept as it is. A
handle without ``/`` names a prefix: ``88.101`` is ``0.NA/88.101``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable, NamedTuple

from .errors import InvalidHandle, InvalidValue, ValueAlreadyExists

NA = "0.NA"
NA_KEY = "0.NA"
DEFAULT_MAX_HANDLE_LENGTH = 255
MAX_TYPE_LENGTH = 128
MAX_INDEX = 2**31 - 1
DEFAULT_TTL = 86400

# value permission bits (handle-wire.md §1)
ADMIN_READ = 0x08
ADMIN_WRITE = 0x04
PUBLIC_READ = 0x02
PUBLIC_WRITE = 0x01
DEFAULT_PERMISSIONS = ADMIN_READ | ADMIN_WRITE | PUBLIC_READ  # "1110"

TTL_RELATIVE = 0
TTL_ABSOLUTE = 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


_INTEGER = re.compile(r"-?[0-9]+")


def integer_text(text: str) -> int | None:
    """The value of an ASCII decimal integer string (``"-12"``), None for anything else."""
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def fold(text: str) -> str:
    """ASCII-only upper-casing: the comparison key of handles, prefixes and value types."""
    if text.isascii():
        return text.upper()
    return text.encode("utf-8", "surrogatepass").upper().decode("utf-8", "surrogatepass")


def _check_text(text: str, what: str) -> None:
    if _SURROGATE.search(text):
        raise InvalidHandle(f"{what} is not valid UTF-8")
    control = _CONTROL.search(text)
    if control:
        raise InvalidHandle(f"{what} contains a control character (U+{ord(control.group()):04X}) at position {control.start() + 1}")


@dataclass(frozen=True, slots=True)
class Handle:
    """A parsed handle. ``text`` keeps the caller's spelling; ``key`` is the comparison key."""

    text: str
    key: str
    prefix: str
    suffix: str

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        max_length: int = DEFAULT_MAX_HANDLE_LENGTH,
        allow_empty_suffix: bool = False,
    ) -> "Handle":
        if not text:
            raise InvalidHandle("Empty handle invalid")
        _check_text(text, "handle")
        if len(text) > max_length:
            raise InvalidHandle(f"handle is {len(text)} characters long; the limit is {max_length}")
        prefix, slash, suffix = text.partition("/")
        if not slash:
            return cls._for_prefix(text, max_length)
        if not prefix:
            raise InvalidHandle(f"handle {text!r} has no prefix before '/'")
        if not suffix and not allow_empty_suffix:
            raise InvalidHandle(f"handle {text!r} has no suffix after '/'")
        if fold(prefix) == NA_KEY and not suffix:
            raise InvalidHandle(f"handle {text!r} names no prefix after '0.NA/'")
        return cls(text, fold(text), prefix, suffix)

    @classmethod
    def _for_prefix(cls, prefix: str, max_length: int) -> "Handle":
        text = f"{NA}/{prefix}"
        if len(text) > max_length:
            raise InvalidHandle(f"prefix handle {text!r} is longer than the limit of {max_length}")
        return cls(text, fold(text), NA, prefix)

    @property
    def is_prefix_record(self) -> bool:
        """True for ``0.NA/<prefix>``, the record that describes a prefix."""
        return fold(self.prefix) == NA_KEY

    @property
    def authority(self) -> str:
        """The prefix whose node answers for this handle: ``X`` for ``0.NA/X``, else the prefix."""
        return self.suffix if self.is_prefix_record else self.prefix

    @property
    def prefix_key(self) -> str:
        return fold(self.prefix)

    def __str__(self) -> str:
        return self.text


def parse_prefix(text: str) -> str:
    """Validate a prefix as operators spell it: ``88.101`` or ``0.NA/88.101``; returns ``88.101``."""
    if fold(text[:5]) == "0.NA/":
        text = text[5:]
    if not text:
        raise InvalidHandle("Empty prefix invalid")
    _check_text(text, "prefix")
    if "/" in text:
        raise InvalidHandle(f"prefix {text!r} must not contain '/'")
    if len(text) > DEFAULT_MAX_HANDLE_LENGTH - len(NA) - 1:
        raise InvalidHandle(f"prefix {text!r} is too long")
    return text


def prefix_record_handle(prefix: str) -> Handle:
    return Handle.parse(f"{NA}/{prefix}")


def ancestors(prefix: str) -> list[str]:
    """``88.101.5`` → ``["88.101.5", "88.101", "88"]``: derived prefixes, longest first."""
    parts = prefix.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


class ValueRef(NamedTuple):
    """A reference to one value: ``index:handle``, as in HS_ADMIN, HS_VLIST and identities."""

    index: int
    handle: str

    @classmethod
    def parse(cls, text: str) -> "ValueRef":
        index, colon, handle = text.partition(":")
        number = integer_text(index) if colon else None
        if number is None or not 0 <= number <= MAX_INDEX or "/" not in handle:
            raise InvalidHandle(f"{text!r} is not of the form index:prefix/suffix")
        return cls(number, handle)

    @property
    def key(self) -> tuple[int, str]:
        return (self.index, fold(self.handle))

    def __str__(self) -> str:
        return f"{self.index}:{self.handle}"


@dataclass(frozen=True, slots=True)
class HandleValue:
    index: int
    type: str
    data: bytes
    ttl: int = DEFAULT_TTL
    ttl_type: int = TTL_RELATIVE
    permissions: int = DEFAULT_PERMISSIONS
    timestamp: int = 0
    references: tuple[ValueRef, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.index <= MAX_INDEX:
            raise InvalidValue(f"Indexes must be positive: {self.index}")
        if len(self.type) > MAX_TYPE_LENGTH:
            raise InvalidValue(f"value type at index {self.index} is longer than {MAX_TYPE_LENGTH} characters")
        if _SURROGATE.search(self.type) or _CONTROL.search(self.type):
            raise InvalidValue(f"value type at index {self.index} contains invalid characters")
        if self.ttl_type not in (TTL_RELATIVE, TTL_ABSOLUTE):
            raise InvalidValue(f"ttl type {self.ttl_type} at index {self.index} is neither relative nor absolute")
        if not -(2**31) <= self.ttl < 2**31:
            raise InvalidValue(f"ttl {self.ttl} at index {self.index} is out of range")
        if not 0 <= self.timestamp < 2**31:
            raise InvalidValue(f"timestamp {self.timestamp} at index {self.index} is out of range")
        if not 0 <= self.permissions <= 0x0F:
            raise InvalidValue(f"permissions {self.permissions} at index {self.index} are out of range")

    @property
    def type_key(self) -> str:
        return fold(self.type)

    @property
    def public_read(self) -> bool:
        return bool(self.permissions & PUBLIC_READ)

    def same_content(self, other: "HandleValue") -> bool:
        """Equal apart from the timestamp (a replace keeps the old timestamp of such values)."""
        return replace(other, timestamp=self.timestamp) == self

    def stamped(self, timestamp: int) -> "HandleValue":
        return replace(self, timestamp=timestamp)

    def ttl_seconds(self, now: int) -> int:
        """How long a cache may keep this value, seen at ``now``."""
        if self.ttl_type == TTL_ABSOLUTE:
            return max(0, self.ttl - now)
        return max(0, self.ttl)


def type_matches(value_type_key: str, query_types: Iterable[str]) -> bool:
    """Handle.Net's type filter: case-insensitive; ``T.`` matches ``T`` and every ``T.x``."""
    for query in query_types:
        q = fold(query)
        if q.endswith("."):
            if value_type_key == q[:-1] or value_type_key.startswith(q):
                return True
        elif value_type_key == q:
            return True
    return False


def check_indexes(values: Iterable[HandleValue]) -> None:
    seen: set[int] = set()
    for value in values:
        if value.index in seen:
            raise ValueAlreadyExists(f"Index conflict for {value.index}")
        seen.add(value.index)


@dataclass(frozen=True, slots=True)
class Record:
    """A handle and its values, sorted by index."""

    handle: Handle
    values: tuple[HandleValue, ...] = field(default=())

    def __post_init__(self) -> None:
        check_indexes(self.values)
        ordered = tuple(sorted(self.values, key=lambda v: v.index))
        if ordered != self.values:
            object.__setattr__(self, "values", ordered)

    def value_at(self, index: int) -> HandleValue | None:
        for value in self.values:
            if value.index == index:
                return value
        return None

    def of_type(self, type_name: str) -> list[HandleValue]:
        key = fold(type_name)
        return [v for v in self.values if v.type_key == key]

    def select(self, indexes: Iterable[int] = (), types: Iterable[str] = ()) -> list[HandleValue]:
        """Values matching any of the indexes or any of the types; all values when both are empty."""
        indexes, types = set(indexes), list(types)
        if not indexes and not types:
            return list(self.values)
        return [v for v in self.values if v.index in indexes or (types and type_matches(v.type_key, types))]

    def public_values(self) -> list[HandleValue]:
        return [v for v in self.values if v.public_read]

    def with_values(self, values: Iterable[HandleValue]) -> "Record":
        return Record(self.handle, tuple(values))

    def cache_ttl(self, now: int) -> int:
        """The smallest TTL of any value at ``now``; how long the record may be cached."""
        if not self.values:
            return DEFAULT_TTL
        return min(v.ttl_seconds(now) for v in self.values)

    def free_index(self, start: int = 1) -> int:
        return free_index(self.values, start)


def free_index(values: Iterable[HandleValue], start: int = 1) -> int:
    """The first index from ``start`` on that none of ``values`` uses."""
    used = {v.index for v in values}
    index = start
    while index in used:
        index += 1
    return index
