"""The mirrors this node keeps of other nodes' prefixes: their settings and progress, and applying what a
follower brings (snapshot chunks, feed batches), each in one transaction together with that progress.

Mirrored records are written as the origin stored them (the same encoded values, so the same
signature bytes), and every change goes through this node's change log like any write, so that caches
are evicted and nodes following this one see it. Adding or removing a mirror logs a home or unhome of
``0.NA/<prefix>``: every process of the node reloads who answers for what.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Sequence

import asyncpg

from ..errors import ConcurrentUpdate, IdresError
from ..model import NA, fold
from .db import unavailable_on_driver_errors
from .feed import RecordRow
from .store import OP_CREATE, OP_DELETE, OP_HOME, OP_UNHOME, OP_UPDATE, prefix_change_key

_COLUMNS = ("prefix, spelled, origin, username, secret, trust_root, ca_pem, tls_verify, cursor, state, verification, records, rejected,"
            " applied, snapshots, origin_head, caught_up_at, contacted_at, last_error, last_error_at, added_at")
_ROW_COLUMNS = ["handle", "spelled", "prefix", "vals", "public_json", "min_ttl", "expires_at", "sig_expires"]
_INCOMING = (
    "CREATE TEMP TABLE IF NOT EXISTS mirror_incoming (handle text, spelled text, prefix text, vals bytea,"
    " public_json bytea, min_ttl integer, expires_at bigint, sig_expires bigint) ON COMMIT DELETE ROWS"
)
_UPSERT = """
INSERT INTO handles (handle, spelled, prefix, vals, public_json, min_ttl, expires_at, sig_expires)
SELECT handle, spelled, prefix, vals, public_json, min_ttl, expires_at, sig_expires FROM mirror_incoming
ON CONFLICT (handle) DO UPDATE SET spelled = excluded.spelled, vals = excluded.vals, public_json = excluded.public_json,
    min_ttl = excluded.min_ttl, expires_at = excluded.expires_at, sig_expires = excluded.sig_expires,
    version = handles.version + 1, updated_at = now()
WHERE handles.vals IS DISTINCT FROM excluded.vals OR handles.spelled IS DISTINCT FROM excluded.spelled
RETURNING handle, (xmax = 0) AS inserted
"""
_PREFIX_RECORDS = ("SELECT handle FROM handles WHERE prefix = '0.NA'"
                   " AND (handle = '0.NA/' || $1 OR starts_with(handle, '0.NA/' || $1 || '.'))")
_UNSEEN = " AND NOT EXISTS (SELECT 1 FROM mirror_seen s WHERE s.prefix = $1 AND s.handle = handles.handle)"
_LOG = "SELECT log_changes($1::text[], $2::smallint)"
LEASE_SPACE = b"idres mirror lease:"


@dataclass(frozen=True)
class Mirror:
    prefix: str  # comparison key
    spelled: str
    origin: str
    username: str | None
    secret: str | None
    trust_root: bytes | None
    ca_pem: bytes | None
    tls_verify: bool
    cursor: int | None
    state: str
    verification: str | None
    records: int
    rejected: int
    applied: int
    snapshots: int
    origin_head: int | None
    caught_up_at: datetime | None
    contacted_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    added_at: datetime


class MirrorGone(IdresError):
    """The mirror was removed while its follower worked: what it was applying is dropped."""


def lease_key(prefix: str) -> int:
    """The advisory-lock key that elects the one process of a node following a mirrored prefix."""
    digest = hashlib.blake2b(LEASE_SPACE + fold(prefix).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _mirror(row: asyncpg.Record) -> Mirror:
    return Mirror(**{k: (bytes(v) if isinstance(v, memoryview) else v) for k, v in dict(row).items()})


async def add(conn: asyncpg.Connection, spelled: str, origin: str, *, username: str | None = None, secret: str | None = None,
              trust_root: bytes | None = None, ca_pem: bytes | None = None, tls_verify: bool = True) -> None:
    """Mirror ``spelled`` from ``origin``; refused if it is homed or mirrored here already."""
    key = fold(spelled)
    with unavailable_on_driver_errors():
        async with conn.transaction():
            if await conn.fetchval("SELECT true FROM prefixes WHERE prefix = $1", key):
                raise IdresError(f"prefix {spelled} is homed here: a node cannot mirror a prefix it answers for itself")
            existing = await conn.fetchval("SELECT origin FROM mirrors WHERE prefix = $1", key)
            if existing is not None:
                raise IdresError(f"prefix {spelled} is mirrored from {existing} already: remove that mirror first")
            await conn.execute(
                "INSERT INTO mirrors (prefix, spelled, origin, username, secret, trust_root, ca_pem, tls_verify)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", key, spelled, origin, username, secret, trust_root, ca_pem, tls_verify)
            await conn.fetchval("SELECT log_change($1, $2::smallint)", prefix_change_key(spelled), OP_HOME)


async def remove(conn: asyncpg.Connection, prefix: str) -> bool:
    """Stop mirroring a prefix (its records stay, served by nobody until it is homed or mirrored again)."""
    key = fold(prefix)
    with unavailable_on_driver_errors():
        async with conn.transaction():
            removed = await conn.fetchval("DELETE FROM mirrors WHERE prefix = $1 RETURNING true", key)
            if removed:
                await conn.execute("DELETE FROM mirror_seen WHERE prefix = $1", key)
                await conn.fetchval("SELECT log_change($1, $2::smallint)", prefix_change_key(prefix), OP_UNHOME)
    return bool(removed)


async def every(conn: asyncpg.Connection | asyncpg.Pool) -> list[Mirror]:
    with unavailable_on_driver_errors():
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM mirrors ORDER BY prefix")
    return [_mirror(r) for r in rows]


async def get(conn: asyncpg.Connection | asyncpg.Pool, prefix: str) -> Mirror | None:
    with unavailable_on_driver_errors():
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM mirrors WHERE prefix = $1", fold(prefix))
    return _mirror(row) if row is not None else None


async def following(conn: asyncpg.Connection, prefix: str, verification: str) -> None:
    """A process follows the mirror now, checking records as ``verification`` says."""
    with unavailable_on_driver_errors():
        await conn.execute("UPDATE mirrors SET verification = $2 WHERE prefix = $1", fold(prefix), verification)


async def note(pool: asyncpg.Pool, prefix: str, *, head: int | None = None, caught_up: bool = False, error: str | None = None) -> None:
    """Record an answer of the origin (its head; whether this mirror holds everything it had), or an error."""
    with unavailable_on_driver_errors():
        if error is not None:
            await pool.execute("UPDATE mirrors SET last_error = $2, last_error_at = now() WHERE prefix = $1", fold(prefix), error)
            return
        await pool.execute(
            "UPDATE mirrors SET origin_head = coalesce($2, origin_head), contacted_at = now(), last_error = NULL,"
            " caught_up_at = CASE WHEN $3 THEN now() ELSE caught_up_at END WHERE prefix = $1", fold(prefix), head, caught_up)


# --- applying ------------------------------------------------------------------------------------


def _rows(records: Iterable[RecordRow]) -> list[tuple]:
    return [(r.key, r.spelled, r.prefix_key, r.vals, r.public_json, r.min_ttl, r.expires_at, r.sig_expires) for r in records]


async def _upsert(conn: asyncpg.Connection, records: Sequence[RecordRow]) -> tuple[list[str], list[str]]:
    """Insert or overwrite these records (each key once); (inserted keys, overwritten keys). Unchanged ones are left alone."""
    if not records:
        return [], []
    await conn.execute(_INCOMING)
    await conn.copy_records_to_table("mirror_incoming", records=_rows(records), columns=_ROW_COLUMNS)
    written = await conn.fetch(_UPSERT)
    await conn.execute("TRUNCATE mirror_incoming")
    return [r["handle"] for r in written if r["inserted"]], [r["handle"] for r in written if not r["inserted"]]


async def _log(conn: asyncpg.Connection, changes: Sequence[tuple[str, int]]) -> None:
    """Log changes in order, runs of one op with one call."""
    run: list[str] = []
    for i, (key, op) in enumerate(changes):
        run.append(key)
        if i + 1 == len(changes) or changes[i + 1][1] != op:
            await conn.fetchval(_LOG, run, op)
            run = []


async def _progress(conn: asyncpg.Connection, prefix: str, sets: str, *args: object) -> None:
    done = await conn.fetchval(f"UPDATE mirrors SET {sets} WHERE prefix = $1 RETURNING true", prefix, *args)
    if not done:
        raise MirrorGone(f"the mirror of {prefix} was removed")


async def owned_prefix_records(conn: asyncpg.Connection, prefix: str, owns: Callable[[str], bool], unseen: bool = False) -> list[str]:
    """Keys of the prefix records held here that belong to the mirror of ``prefix`` (``owns`` decides)."""
    rows = await conn.fetch(_PREFIX_RECORDS + (_UNSEEN if unseen else ""), prefix)
    return [r["handle"] for r in rows if owns(r["handle"])]


async def begin_snapshot(conn: asyncpg.Connection, prefix: str, owns: Callable[[str], bool]) -> bool:
    """Start taking in a snapshot; True when nothing of the prefix is held here yet (records are then simply
    inserted), False when it replaces what is held (keys are tracked, the rest deleted at the end)."""
    with unavailable_on_driver_errors():
        async with conn.transaction():
            await _progress(conn, prefix, "state = 'snapshot', cursor = NULL")
            await conn.execute("DELETE FROM mirror_seen WHERE prefix = $1", prefix)
            held = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM handles WHERE prefix = $1)", prefix)
            return not held and not await owned_prefix_records(conn, prefix, owns)


async def apply_chunk(conn: asyncpg.Connection, prefix: str, records: Sequence[RecordRow], *, fresh: bool,
                      rejected: int = 0, kept: Sequence[str] = ()) -> int:
    """One chunk of a snapshot, in one transaction; returns how many records were new here. ``rejected``
    records of the chunk were refused; ``kept`` are the keys of those among them whose version held here,
    if any, stays (a snapshot that replaces what is held does not delete them)."""
    with unavailable_on_driver_errors():
        async with conn.transaction():
            if fresh:
                if records:
                    await conn.copy_records_to_table("handles", records=_rows(records), columns=_ROW_COLUMNS)
                    await conn.fetchval(_LOG, [r.key for r in records], OP_CREATE)
                inserted = len(records)
            else:
                created, changed = await _upsert(conn, records)
                seen = [(prefix, key) for key in {*(r.key for r in records), *kept}]
                await conn.copy_records_to_table("mirror_seen", records=seen, columns=["prefix", "handle"])
                await _log(conn, [(k, OP_CREATE) for k in created] + [(k, OP_UPDATE) for k in changed])
                inserted = len(created)
            await _progress(conn, prefix, "records = records + $2, rejected = rejected + $3", inserted, rejected)
    return inserted


async def finish_snapshot(conn: asyncpg.Connection, prefix: str, cursor: int, *, replaced: bool, owns: Callable[[str], bool]) -> int:
    """The snapshot is in: delete what it did not bring (when it replaced records), and continue from its
    cursor; one transaction. Returns how many records were deleted."""
    with unavailable_on_driver_errors():
        async with conn.transaction():
            gone: list[str] = []
            if replaced:
                gone = [r["handle"] for r in await conn.fetch("DELETE FROM handles WHERE prefix = $1" + _UNSEEN + " RETURNING handle", prefix)]
                stale = await owned_prefix_records(conn, prefix, owns, unseen=True)
                if stale:
                    await conn.execute("DELETE FROM handles WHERE handle = ANY($1::text[])", stale)
                gone += stale
                await _log(conn, [(k, OP_DELETE) for k in gone])
                await conn.execute("DELETE FROM mirror_seen WHERE prefix = $1", prefix)
            held = await conn.fetchval("SELECT count(*) FROM handles WHERE prefix = $1", prefix)
            held += len(await owned_prefix_records(conn, prefix, owns))
            await _progress(conn, prefix, "cursor = $2, state = 'following', records = $3, snapshots = snapshots + 1,"
                            " origin_head = greatest(origin_head, $2), contacted_at = now()", cursor, held)
    return len(gone)


@dataclass
class Batch:
    """What one page of the origin's feed changes here: the records to write (each key once, as it is now at
    the origin), the keys to delete, and the changes to log, in the origin's order."""

    upserts: dict[str, RecordRow]
    deletes: list[str]
    changes: list[tuple[str, bool]]  # (key, deleted?) for every change applied
    next_cursor: int
    head: int
    rejected: int
    caught_up: bool


async def apply_batch(conn: asyncpg.Connection, prefix: str, expected_cursor: int, batch: Batch) -> None:
    """A page of the feed, in one transaction with the mirror's cursor: ConcurrentUpdate if the cursor is no
    longer ``expected_cursor`` (another process applied it), so a page is never applied twice or skipped."""
    with unavailable_on_driver_errors():
        async with conn.transaction():
            state = await conn.fetchrow("SELECT cursor FROM mirrors WHERE prefix = $1 FOR UPDATE", prefix)
            if state is None:
                raise MirrorGone(f"the mirror of {prefix} was removed")
            cursor = state["cursor"]
            if cursor != expected_cursor:
                raise ConcurrentUpdate(f"the mirror of {prefix} is at {cursor}, not {expected_cursor}: another process applied it")
            created, _changed = await _upsert(conn, list(batch.upserts.values()))
            deleted = await conn.fetch("DELETE FROM handles WHERE handle = ANY($1::text[]) RETURNING handle", batch.deletes)
            fresh = set(created)
            ops = []
            for key, gone in batch.changes:
                ops.append((key, OP_DELETE if gone else OP_CREATE if key in fresh else OP_UPDATE))
                fresh.discard(key)
            await _log(conn, ops)
            await _progress(
                conn, prefix, "cursor = $2, origin_head = $3, records = records + $4, rejected = rejected + $5, applied = applied + $6,"
                " contacted_at = now(), last_error = NULL, caught_up_at = CASE WHEN $7 THEN now() ELSE caught_up_at END",
                batch.next_cursor, batch.head, len(created) - len(deleted), batch.rejected, len(batch.changes), batch.caught_up)


def is_prefix_record(key: str) -> bool:
    return key.startswith(NA + "/")
