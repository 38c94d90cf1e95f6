"""A record as the store keeps it: encoded values, the pre-rendered public JSON, TTL bounds, version.

Resolution serves ``public_json`` without decoding anything; the values are decoded only when a
request filters them or is authenticated. Pure.
"""

from __future__ import annotations

from .encoding import decode_values, encode_values
from .errors import CorruptRecord, IdresError
from .model import TTL_ABSOLUTE, Handle, Record
from .signing import signature_expiry
from .value_json import render_values


class StoredRecord:
    __slots__ = ("handle", "vals", "public_json", "min_ttl", "expires_at", "version", "sig_expires", "_record")

    def __init__(
        self,
        handle: str,
        vals: bytes,
        public_json: bytes,
        min_ttl: int,
        expires_at: int | None,
        version: int,
        record: Record | None = None,
        sig_expires: int | None = None,
    ) -> None:
        self.handle = handle  # as its creator spelled it
        self.vals = vals
        self.public_json = public_json
        self.min_ttl = min_ttl
        self.expires_at = expires_at
        self.version = version
        self.sig_expires = sig_expires  # earliest exp of its HS_SIGNATURE values, None when unsigned
        self._record = record

    @classmethod
    def from_record(cls, record: Record, version: int = 1, sig_expires: int | None | type = ...) -> "StoredRecord":
        """The row of ``record``; ``sig_expires`` when the caller knows it (a record it just signed), else
        read from its HS_SIGNATURE values."""
        relative = [v.ttl for v in record.values if v.ttl_type != TTL_ABSOLUTE]
        absolute = [v.ttl for v in record.values if v.ttl_type == TTL_ABSOLUTE]
        return cls(
            record.handle.text,
            encode_values(record.values),
            render_values(record.public_values()),
            max(0, min(relative)) if relative else 86400,
            min(absolute) if absolute else None,
            version,
            record,
            signature_expiry(record.values) if sig_expires is ... else sig_expires,
        )

    @property
    def record(self) -> Record:
        if self._record is None:
            try:
                self._record = Record(Handle.parse(self.handle, max_length=10**6), tuple(decode_values(self.vals)))
            except IdresError as exc:
                raise CorruptRecord(f"the stored record of {self.handle} cannot be decoded: {exc.message}") from exc
        return self._record

    @property
    def has_public_values(self) -> bool:
        return self.public_json != b"[]"

    def cache_ttl(self, now: int) -> int:
        """How long a cache may keep this record at ``now``: its smallest value TTL."""
        if self.expires_at is None:
            return self.min_ttl
        return max(0, min(self.min_ttl, self.expires_at - now))

    @property
    def size(self) -> int:
        """About the memory a cache holding it spends: its values, its public JSON and the answer
        rendered from it, with allocator and object overhead (measured: ~1.5× the bytes, +1 KB)."""
        return (len(self.vals) + 2 * len(self.public_json) + 2 * len(self.handle)) * 3 // 2 + 1024
