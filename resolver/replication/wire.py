"""What the change feed and snapshots carry, as JSON: records exactly as stored, changes, snapshot lines.

A record travels as its stored columns: ``values`` is the standard base64 of its values in the Handle
binary encoding (every value, signatures included, byte for byte as the origin stores them),
``publicJson`` the JSON text of its public values as the origin serves them, and the TTL and signature
bounds derived from them. A snapshot is NDJSON: a ``snapshot`` line (the cursor the feed continues
from), record lines, a ``chunk`` line after every chunk (its SHA-256 over the record lines, and the
origin's seal of it), and an ``end`` line; a stream without its ``end`` line is incomplete.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from registry.errors import UpstreamInvalid
from registry.model import fold
from registry.pg.feed import OP_NAMES, FeedPage, RecordRow

NDJSON_TYPE = "application/x-ndjson"
SNAPSHOT_FORMAT = 1


def record_json(row: RecordRow) -> dict[str, Any]:
    return {
        "handle": row.spelled,
        "values": base64.b64encode(row.vals).decode("ascii"),
        "publicJson": row.public_json.decode("utf-8"),
        "minTtl": row.min_ttl,
        "expiresAt": row.expires_at,
        "signatureExpires": row.sig_expires,
    }


def record_line(row: RecordRow) -> bytes:
    return orjson.dumps(record_json(row)) + b"\n"


def _integer(data: dict[str, Any], name: str, optional: bool = False) -> int | None:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise UpstreamInvalid(f"a record's {name!r} is not an integer")
    return value


def parse_record(data: Any) -> RecordRow:
    """A record of the feed or of a snapshot; UpstreamInvalid when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("handle"), str) or not isinstance(data.get("values"), str):
        raise UpstreamInvalid("a record without a handle or values")
    public = data.get("publicJson")
    if not isinstance(public, str):
        raise UpstreamInvalid(f"the record of {data['handle']} has no publicJson")
    try:
        vals = base64.b64decode(data["values"], validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamInvalid(f"the values of {data['handle']} are not base64") from None
    return RecordRow(fold(data["handle"]), data["handle"], vals, public.encode("utf-8"), _integer(data, "minTtl"),
                     _integer(data, "expiresAt", optional=True), _integer(data, "signatureExpires", optional=True))


def _time(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def page_json(page: FeedPage) -> dict[str, Any]:
    """The answer of ``GET /api/sync/changes``."""
    return {
        "responseCode": 1,
        "changes": [
            {"cursor": e.seq, "handle": e.key, "op": OP_NAMES.get(e.op, str(e.op)), "at": _time(e.at),
             "record": record_json(e.record) if e.record is not None else None}
            for e in page.entries
        ],
        "next": page.next_cursor,
        "more": page.more,
        "head": page.head,
    }


@dataclass(frozen=True)
class Change:
    """One change of a feed page, as a follower reads it."""

    cursor: int
    key: str
    op: str
    record: RecordRow | None


@dataclass(frozen=True)
class Page:
    changes: list[Change]
    next_cursor: int
    more: bool
    head: int


def parse_page(data: Any) -> Page:
    """A page of another node's feed; UpstreamInvalid when it is not one."""
    try:
        changes = [Change(int(c["cursor"]), fold(str(c["handle"])), str(c["op"]),
                          parse_record(c["record"]) if c.get("record") is not None else None) for c in data["changes"]]
        page = Page(changes, int(data["next"]), bool(data["more"]), int(data["head"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UpstreamInvalid("the change feed answered something that is not a page of changes") from None
    cursors = [c.cursor for c in page.changes]
    if cursors != sorted(set(cursors)) or (cursors and cursors[-1] > page.next_cursor):
        raise UpstreamInvalid("the change feed answered changes out of order")
    return page


# --- snapshot lines ------------------------------------------------------------------------------


def header_line(cursor: int, prefixes: list[str], chunk: int, sealed: bool) -> bytes:
    return orjson.dumps({"snapshot": {"format": SNAPSHOT_FORMAT, "cursor": cursor, "prefixes": prefixes, "chunk": chunk,
                                      "sealed": sealed}}) + b"\n"


@dataclass(frozen=True)
class ChunkInfo:
    """What a ``chunk`` line says of the record lines before it (since the previous chunk line)."""

    prefix: str  # comparison key
    number: int
    records: int
    sha256: str
    seal: str | None = None

    def line(self) -> bytes:
        chunk: dict[str, Any] = {"prefix": self.prefix, "number": self.number, "records": self.records, "sha256": self.sha256}
        if self.seal is not None:
            chunk["seal"] = self.seal
        return orjson.dumps({"chunk": chunk}) + b"\n"

    def sealed_data(self, cursor: int) -> bytes:
        """The bytes a seal covers: the chunk's place in the snapshot and the digest of its record lines."""
        return orjson.dumps({"prefix": self.prefix, "cursor": cursor, "number": self.number, "records": self.records,
                             "sha256": self.sha256})


def parse_chunk(data: Any) -> ChunkInfo:
    try:
        seal = data.get("seal")
        chunk = ChunkInfo(fold(str(data["prefix"])), int(data["number"]), int(data["records"]), str(data["sha256"]),
                          seal if isinstance(seal, str) else None)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UpstreamInvalid("a snapshot chunk line that idres cannot read") from None
    return chunk


def end_line(records: int, cursor: int) -> bytes:
    return orjson.dumps({"end": {"records": records, "cursor": cursor}}) + b"\n"


def error_line(code: int, message: str) -> bytes:
    return orjson.dumps({"error": {"responseCode": code, "message": message}}) + b"\n"


class LineDigest:
    """The SHA-256 over a chunk's record lines, each with its newline, as sent."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def add(self, line: bytes) -> None:
        self._hash.update(line)
        self.count += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
