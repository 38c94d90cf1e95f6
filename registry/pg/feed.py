"""The change log as a stream: ``changes_since(cursor) -> (changes, next_cursor, more)``.

A cursor is the ``seq`` of the last change a reader has applied. Because ``seq`` values are handed out
in commit order (see ``log_change`` in migration 0001), a reader that resumes from its cursor never
skips a committed change.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator

import asyncpg

from ..errors import SnapshotNeeded
from .db import unavailable_on_driver_errors

CHANNEL = "idres_changes"


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    handle: str  # comparison key; ``0.NA/<PREFIX>`` for home and unhome
    op: int
    at: datetime


async def changes_since(
    conn: asyncpg.Connection | asyncpg.Pool, cursor: int, limit: int = 1000
) -> tuple[list[Change], int, bool]:
    """Up to ``limit`` changes after ``cursor``, the cursor after them, and whether more are waiting."""
    with unavailable_on_driver_errors():
        rows = await conn.fetch(
            "SELECT seq, handle, op, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2", cursor, limit + 1
        )
    more = len(rows) > limit
    changes = [Change(r["seq"], r["handle"], r["op"], r["at"]) for r in rows[:limit]]
    next_cursor = changes[-1].seq if changes else cursor
    return changes, next_cursor, more


async def head(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """The seq of the newest committed change (0 for an empty log)."""
    with unavailable_on_driver_errors():
        return await conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")


# --- the change feed of other nodes: changes with the records they name, a horizon, pruning -------

OP_NAMES = {1: "upsert", 2: "delete", 3: "upsert", 4: "home", 5: "unhome"}
RECORD_OPS = frozenset({1, 2, 3})
_RECORD_COLUMNS = "handle, spelled, vals, public_json, min_ttl, expires_at, sig_expires"
_RECORDS = f"SELECT {_RECORD_COLUMNS} FROM handles WHERE handle = ANY($1::text[])"
_HANDLES_OF = f"SELECT {_RECORD_COLUMNS} FROM handles WHERE prefix = $1"
_PREFIX_RECORDS_OF = (
    f"SELECT {_RECORD_COLUMNS} FROM handles WHERE prefix = '0.NA'"
    " AND (handle = '0.NA/' || $1 OR starts_with(handle, '0.NA/' || $1 || '.'))"
)
_PRUNE = """
WITH oldest AS (SELECT seq, at FROM changes ORDER BY seq LIMIT $2),
     young AS (SELECT min(seq) AS seq FROM oldest WHERE at >= $1)
DELETE FROM changes
WHERE seq IN (SELECT seq FROM oldest WHERE seq < coalesce((SELECT seq FROM young), 9223372036854775807))
  AND seq < (SELECT max(seq) FROM changes)
RETURNING seq
"""


_ROLLBACK_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass(frozen=True, slots=True)
class RecordRow:
    """A record exactly as stored: its comparison key, spelling, encoded values and what derives from them."""

    key: str
    spelled: str
    vals: bytes
    public_json: bytes
    min_ttl: int
    expires_at: int | None
    sig_expires: int | None

    @property
    def prefix_key(self) -> str:
        return self.key.partition("/")[0]


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One change, with the record it names as it is when the feed is read (None: it does not exist then,
    or the change is a home or unhome)."""

    seq: int
    key: str
    op: int
    at: datetime
    record: RecordRow | None


@dataclass(frozen=True, slots=True)
class FeedPage:
    entries: list[FeedEntry]
    next_cursor: int
    more: bool
    head: int


def _record(row: asyncpg.Record) -> RecordRow:
    return RecordRow(row["handle"], row["spelled"], row["vals"], row["public_json"], row["min_ttl"], row["expires_at"],
                     row["sig_expires"])


def in_scope(key: str, prefixes: tuple[str, ...]) -> bool:
    """Whether a change key belongs to one of ``prefixes`` (comparison keys; none: every prefix): a handle
    under it, its prefix record ``0.NA/P`` (and home or unhome), or the record of a prefix derived from it."""
    if not prefixes:
        return True
    for prefix in prefixes:
        if key.startswith(prefix + "/"):
            return True
        if key.startswith("0.NA/") and (key == "0.NA/" + prefix or key.startswith("0.NA/" + prefix + ".")):
            return True
    return False


async def horizon(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """The newest seq pruned from the log (0: none): a cursor below it has missed changes."""
    with unavailable_on_driver_errors():
        return await conn.fetchval("SELECT pruned_through FROM sync_horizon")


def _check_cursor(after: int, pruned: int, head: int) -> None:
    if after < pruned:
        raise SnapshotNeeded(f"cursor {after} is older than this node's change-log horizon ({pruned}): the changes after "
                             "it were pruned; take a fresh snapshot (GET /api/sync/snapshot) and follow on from its cursor")
    if after > head:
        raise SnapshotNeeded(f"cursor {after} is ahead of this node's change log (newest {head}): the log was reset or "
                             "restored; take a fresh snapshot (GET /api/sync/snapshot) and follow on from its cursor")


def _select(rows: list[asyncpg.Record], after: int, limit: int, scan: int, prefixes: tuple[str, ...]):
    """The changes of ``prefixes`` among the scanned rows: (chosen, next cursor, more)."""
    chosen = []
    scanned = rows[:scan]
    for i, row in enumerate(scanned):
        if in_scope(row["handle"], prefixes):
            chosen.append(row)
            if len(chosen) == limit:
                return chosen, row["seq"], i + 1 < len(rows)
    return chosen, scanned[-1]["seq"] if scanned else after, len(rows) > scan


async def page(conn: asyncpg.Connection, after: int, limit: int, prefixes: tuple[str, ...] = (), scan: int | None = None) -> FeedPage:
    """Up to ``limit`` changes of ``prefixes`` after the cursor ``after``, in commit order, each with its record,
    read in one snapshot; at most ``scan`` log rows are looked at (so a page of a quiet prefix still moves
    the cursor on). SnapshotNeeded when the cursor is past the horizon or ahead of the log."""
    scan = scan or max(limit * 10, 1000)
    with unavailable_on_driver_errors():
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            pruned = await conn.fetchval("SELECT pruned_through FROM sync_horizon")
            head = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
            _check_cursor(after, pruned, head)
            rows = await conn.fetch("SELECT seq, handle, op, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2", after, scan + 1)
            chosen, next_cursor, more = _select(rows, after, limit, scan, prefixes)
            wanted = list({r["handle"] for r in chosen if r["op"] in RECORD_OPS})
            records = {r["handle"]: _record(r) for r in await conn.fetch(_RECORDS, wanted)} if wanted else {}
    entries = [FeedEntry(r["seq"], r["handle"], r["op"], r["at"], records.get(r["handle"]) if r["op"] in RECORD_OPS else None)
               for r in chosen]
    return FeedPage(entries, next_cursor, more, head)


async def prune(conn: asyncpg.Connection, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` of the oldest changes made before ``before`` (never the newest change, so that
    the head stays known) and move the horizon past them; returns how many were deleted."""
    with unavailable_on_driver_errors():
        async with conn.transaction():
            pruned = await conn.fetch(_PRUNE, before, batch)
            if pruned:
                await conn.execute("UPDATE sync_horizon SET pruned_through = greatest(pruned_through, $1), pruned_at = now()",
                                   max(r["seq"] for r in pruned))
    return len(pruned)


class Snapshot:
    """Every record of some prefixes from one consistent read (a repeatable-read, read-only transaction on
    ``conn``), and ``cursor``: the seq the change feed continues from."""

    def __init__(self, conn: asyncpg.Connection, cursor: int) -> None:
        self._conn = conn
        self.cursor = cursor

    async def records(self, prefix: str, batch: int = 1000) -> AsyncIterator[list[RecordRow]]:
        """The records of ``prefix`` (a comparison key), ``batch`` at a time: its prefix record and those of
        prefixes derived from it, then its handles. Read through a server-side cursor, one batch ahead: the
        database reads the next batch while the caller works on this one; memory stays constant."""
        for query in (_PREFIX_RECORDS_OF, _HANDLES_OF):
            with unavailable_on_driver_errors():
                cursor = await self._conn.cursor(query, prefix)
                ahead = asyncio.ensure_future(cursor.fetch(batch))
            try:
                while True:
                    with unavailable_on_driver_errors():
                        rows = await ahead
                    if len(rows) == batch:
                        ahead = asyncio.ensure_future(cursor.fetch(batch))
                    if rows:
                        yield [_record(r) for r in rows]
                    if len(rows) < batch:
                        break
            finally:
                if not ahead.done():
                    with contextlib.suppress(Exception):
                        await ahead  # the connection takes one command at a time: let it finish


@contextlib.asynccontextmanager
async def snapshot(conn: asyncpg.Connection) -> AsyncIterator[Snapshot]:
    """A consistent read of the store. Because seq values become visible in commit order, every change up to
    the newest one this read sees is in it, and none after: the feed continues from that seq."""
    transaction = conn.transaction(isolation="repeatable_read", readonly=True)
    with unavailable_on_driver_errors():
        await transaction.start()
        try:
            cursor = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
        except BaseException:
            await transaction.rollback()
            raise
    try:
        yield Snapshot(conn, cursor)
    finally:
        if not conn.is_closed():
            with contextlib.suppress(*_ROLLBACK_FAILURES):
                await transaction.rollback()  # read only: nothing to keep
