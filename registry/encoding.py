"""The Handle binary encoding (handle-wire.md §1): bounds-checked reads and writes, and handle values.

The same bytes are used on the wire, in storage and, without their first eight bytes, for the digests
of HS_SIGNATURE. Pure.
"""

from __future__ import annotations

import struct
from typing import Iterable

from .errors import InvalidValue
from .model import HandleValue, ValueRef

_INT2 = struct.Struct(">h")
_UINT2 = struct.Struct(">H")
_INT4 = struct.Struct(">i")
_INT8 = struct.Struct(">q")
_VALUE_HEAD = struct.Struct(">iiBiB")  # index, timestamp, ttlType, ttl, permissions
MAX_FIELD = 64 * 1024 * 1024


class DecodeError(InvalidValue):
    """Bytes that do not follow the Handle encoding."""


class Reader:
    """Reads big-endian fields from a buffer; every length is checked against what is left."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = memoryview(buf)
        self.pos = pos

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise DecodeError(f"truncated data: needed {n} bytes at offset {self.pos}, have {len(self.buf) - self.pos}")
        chunk = self.buf[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self._take(1)[0]

    def int2(self) -> int:
        return _INT2.unpack(self._take(2))[0]

    def uint2(self) -> int:
        return _UINT2.unpack(self._take(2))[0]

    def int4(self) -> int:
        return _INT4.unpack(self._take(4))[0]

    def int8(self) -> int:
        return _INT8.unpack(self._take(8))[0]

    def raw(self, n: int) -> bytes:
        return bytes(self._take(n))

    def bytes(self) -> bytes:
        length = self.int4()
        if length > MAX_FIELD:
            raise DecodeError(f"field of {length} bytes is larger than the limit")
        return bytes(self._take(length))

    def text(self) -> str:
        try:
            return self.bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"text field is not valid UTF-8: {exc.reason}") from None

    def count(self, min_item_size: int = 1) -> int:
        n = self.int4()
        if n < 0 or n * min_item_size > self.remaining:
            raise DecodeError(f"array of {n} items does not fit in {self.remaining} bytes")
        return n

    @property
    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def end(self) -> None:
        if self.remaining:
            raise DecodeError(f"{self.remaining} unexpected bytes after the data")


class Writer:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def byte(self, value: int) -> "Writer":
        self.parts.append(bytes((value & 0xFF,)))
        return self

    def int2(self, value: int) -> "Writer":
        self.parts.append(_INT2.pack(value))
        return self

    def uint2(self, value: int) -> "Writer":
        self.parts.append(_UINT2.pack(value))
        return self

    def int4(self, value: int) -> "Writer":
        self.parts.append(_INT4.pack(value))
        return self

    def int8(self, value: int) -> "Writer":
        self.parts.append(_INT8.pack(value))
        return self

    def raw(self, data: bytes) -> "Writer":
        self.parts.append(bytes(data))
        return self

    def bytes(self, data: bytes) -> "Writer":
        self.parts.append(_INT4.pack(len(data)))
        self.parts.append(bytes(data))
        return self

    def text(self, value: str) -> "Writer":
        return self.bytes(value.encode("utf-8"))

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


def write_value(w: Writer, value: HandleValue) -> None:
    w.raw(_VALUE_HEAD.pack(value.index, value.timestamp, value.ttl_type, value.ttl, value.permissions))
    w.text(value.type)
    w.bytes(value.data)
    w.int4(len(value.references))
    for ref in value.references:
        w.text(ref.handle)
        w.int4(ref.index)


def read_value(r: Reader) -> HandleValue:
    index, timestamp, ttl_type, ttl, permissions = _VALUE_HEAD.unpack(r.raw(_VALUE_HEAD.size))
    value_type = r.text()
    data = r.bytes()
    references = tuple(ValueRef(index=r_index, handle=r_handle) for r_handle, r_index in _read_refs(r))
    return HandleValue(index, value_type, data, ttl, ttl_type, permissions, timestamp, references)


def _read_refs(r: Reader) -> list[tuple[str, int]]:
    refs = []
    for _ in range(r.count(8)):
        handle = r.text()
        refs.append((handle, r.int4()))
    return refs


def encode_value(value: HandleValue) -> bytes:
    w = Writer()
    write_value(w, value)
    return w.getvalue()


def digest_bytes(value: HandleValue) -> bytes:
    """The value's encoding without index and timestamp: what an HS_SIGNATURE digest covers."""
    return encode_value(value)[8:]


def encode_values(values: Iterable[HandleValue]) -> bytes:
    values = list(values)
    w = Writer().int4(len(values))
    for value in values:
        write_value(w, value)
    return w.getvalue()


def decode_values(data: bytes) -> list[HandleValue]:
    r = Reader(data)
    values = [read_value(r) for _ in range(r.count(_VALUE_HEAD.size + 12))]
    r.end()
    return values
