"""The PostgreSQL store: records, homed prefixes and the change log, through asyncpg.

Every write appends its change-log row in the same transaction (``log_change``), so the log is in
commit order and NOTIFY wakes caches and followers when the transaction commits. Methods return model
objects and raise registry errors; asyncpg types never leave this module.
"""

from __future__ import annotations

import contextlib
import time
from typing import AsyncIterator, Callable, Iterable, Protocol, Sequence

import asyncpg

from .db import commit, unavailable_on_driver_errors
from .groups import WriteGroup
from ..errors import ConcurrentUpdate, HandleAlreadyExists, HandleNotFound
from ..model import NA, NA_KEY, Handle, Record, fold
from ..records import StoredRecord

OP_CREATE, OP_DELETE, OP_UPDATE, OP_HOME, OP_UNHOME = 1, 2, 3, 4, 5

_COLUMNS = "spelled, vals, public_json, min_ttl, expires_at, version, sig_expires"
_GET = f"SELECT {_COLUMNS} FROM handles WHERE handle = $1"
_GET_MANY = f"SELECT handle, {_COLUMNS} FROM handles WHERE handle = ANY($1::text[])"
_BY_PREFIX = f"SELECT {_COLUMNS} FROM handles WHERE prefix = $1"
_INSERT = (
    "INSERT INTO handles (handle, spelled, prefix, vals, public_json, min_ttl, expires_at, sig_expires)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (handle) DO NOTHING RETURNING version"
)
_UPDATE = (
    "UPDATE handles SET vals = $3, public_json = $4, min_ttl = $5, expires_at = $6, sig_expires = $7,"
    " version = version + 1, updated_at = now() WHERE handle = $1 AND version = $2 RETURNING version"
)
_COPY_COLUMNS = ["handle", "spelled", "prefix", "vals", "public_json", "min_ttl", "expires_at", "sig_expires"]
_DELETE = "DELETE FROM handles WHERE handle = $1 AND ($2::bigint IS NULL OR version = $2) RETURNING version"
_LOG = "SELECT log_change($1, $2::smallint)"
_DUE = """
SELECT h.handle FROM handles h
WHERE (h.sig_expires IS NULL OR h.sig_expires < $1)
  AND EXISTS (
    SELECT 1 FROM prefixes p
    WHERE CASE WHEN h.prefix = '0.NA'
               THEN substr(h.handle, 6) = p.prefix OR starts_with(substr(h.handle, 6), p.prefix || '.')
               ELSE p.prefix = h.prefix END)
ORDER BY h.sig_expires NULLS FIRST
LIMIT $2
"""


def _from_row(row: asyncpg.Record) -> StoredRecord:
    return StoredRecord(
        row["spelled"], row["vals"], row["public_json"], row["min_ttl"], row["expires_at"], row["version"],
        sig_expires=row["sig_expires"],
    )


def prefix_change_key(prefix: str) -> str:
    return fold(f"{NA}/{prefix}")


class Sealer(Protocol):
    """Adds this node's signature to a record version before it is written."""

    def seal(self, record: Record, now: int) -> Record: ...


def _row(stored: StoredRecord, h: Handle) -> tuple:
    return (h.key, h.text, h.prefix_key, stored.vals, stored.public_json, stored.min_ttl, stored.expires_at, stored.sig_expires)


class Store:
    def __init__(self, pool: asyncpg.Pool, sealer: Sealer | None = None, clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self.sealer = sealer
        self._clock = clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    def _stored(self, record: Record) -> StoredRecord:
        """The row of a record version, signed by this node when it has a sealer."""
        if self.sealer is None:
            return StoredRecord.from_record(record)
        now = int(self._clock())
        sealed = self.sealer.seal(record, now)
        lifetime = getattr(self.sealer, "lifetime", None)
        if sealed is not record and lifetime is not None:  # signed just now: its one signature expires then
            return StoredRecord.from_record(sealed, sig_expires=now + lifetime)
        return StoredRecord.from_record(sealed)

    def sealed(self, record: Record) -> StoredRecord:
        """The row a record version is written as: signed by this node when it has a sealer."""
        return self._stored(record)

    def sealed_many(self, records: Sequence[Record | None]) -> list[StoredRecord | None]:
        """``sealed`` of each record (None stays None), with one look at the signing keys for all of them."""
        holding = getattr(self.sealer, "holding", None)
        with holding() if holding is not None else contextlib.nullcontext():
            return [self._stored(r) if r is not None else None for r in records]

    @contextlib.asynccontextmanager
    async def group(self) -> AsyncIterator[WriteGroup]:
        """One transaction writing many records (registry.pg.groups); rolled back if the body raises."""
        with unavailable_on_driver_errors():
            try:
                async with self._pool.acquire() as conn:
                    transaction = conn.transaction()
                    await transaction.start()
                    try:
                        yield WriteGroup(conn)
                    except BaseException:
                        with contextlib.suppress(Exception):  # a lost connection has no transaction to roll back
                            await transaction.rollback()
                        raise
                    await commit(transaction)
            except asyncpg.DeadlockDetectedError:
                raise ConcurrentUpdate("two groups of writes waited on each other; try again") from None

    # --- reads -----------------------------------------------------------------------------------

    async def get(self, key: str) -> StoredRecord | None:
        """The record whose comparison key is ``key``, or None."""
        with unavailable_on_driver_errors():
            row = await self._pool.fetchrow(_GET, key)
        return _from_row(row) if row is not None else None

    async def get_many(self, keys: Sequence[str]) -> dict[str, StoredRecord]:
        with unavailable_on_driver_errors():
            rows = await self._pool.fetch(_GET_MANY, list(keys))
        return {row["handle"]: _from_row(row) for row in rows}

    async def list_handles(self, prefix: str, offset: int = 0, limit: int | None = None) -> tuple[int, list[str]]:
        """(total, handles as spelled) under a prefix, in key order; ``limit`` None means all."""
        key = fold(prefix)
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn:
                total = await conn.fetchval("SELECT count(*) FROM handles WHERE prefix = $1", key)
                if limit == 0:
                    return total, []
                rows = await conn.fetch(
                    "SELECT spelled FROM handles WHERE prefix = $1 ORDER BY handle LIMIT $2 OFFSET $3",
                    key,
                    limit,
                    offset,
                )
        return total, [r["spelled"] for r in rows]

    async def prefix_records(self) -> list[StoredRecord]:
        """Every ``0.NA/<prefix>`` record held here: the prefixes described, delegations among them."""
        with unavailable_on_driver_errors():
            rows = await self._pool.fetch(_BY_PREFIX, NA_KEY)
        return [_from_row(row) for row in rows]

    async def keys_with_type(self, value_type: str, after: str, limit: int) -> list[str]:
        """Keys (after ``after``, in order) of records that may hold a value of ``value_type`` (spelled in
        upper or lower case); the caller decodes them to be sure."""
        needles = [len(t.encode()).to_bytes(4, "big") + t.encode() for t in (value_type.upper(), value_type.lower())]
        with unavailable_on_driver_errors():
            rows = await self._pool.fetch(
                "SELECT handle FROM handles WHERE handle > $1 AND (position($2::bytea in vals) > 0"
                " OR position($3::bytea in vals) > 0) ORDER BY handle LIMIT $4", after, *needles, limit)
        return [r["handle"] for r in rows]

    async def homed_prefixes(self) -> list[str]:
        with unavailable_on_driver_errors():
            rows = await self._pool.fetch("SELECT spelled FROM prefixes ORDER BY prefix")
        return [r["spelled"] for r in rows]

    async def mirrored_prefixes(self) -> dict[str, str]:
        """Prefixes this node keeps a copy of (as spelled) → the node each is copied from (``mirrors.py``)."""
        with unavailable_on_driver_errors():
            rows = await self._pool.fetch("SELECT spelled, origin FROM mirrors ORDER BY prefix")
        return {r["spelled"]: r["origin"] for r in rows}

    # --- writes ----------------------------------------------------------------------------------

    async def create(self, record: Record) -> StoredRecord:
        """Insert a new record; HandleAlreadyExists if the handle is taken."""
        stored = self._stored(record)
        h = record.handle
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                version = await conn.fetchval(_INSERT, *_row(stored, h))
                if version is None:
                    raise HandleAlreadyExists(handle=h.text)
                await conn.fetchval(_LOG, h.key, OP_CREATE)
        return stored

    async def replace(self, record: Record, expected_version: int) -> StoredRecord:
        """Overwrite a record if it is still at ``expected_version``; ConcurrentUpdate otherwise."""
        stored = self._stored(record)
        h = record.handle
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                version = await conn.fetchval(
                    _UPDATE, h.key, expected_version, stored.vals, stored.public_json, stored.min_ttl, stored.expires_at,
                    stored.sig_expires,
                )
                if version is None:
                    raise ConcurrentUpdate(f"{h.text} changed while it was being updated; try again", handle=h.text)
                await conn.fetchval(_LOG, h.key, OP_UPDATE)
        stored.version = version
        return stored

    async def delete(self, handle: Handle, expected_version: int | None = None) -> None:
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                version = await conn.fetchval(_DELETE, handle.key, expected_version)
                if version is None:
                    if expected_version is None:
                        raise HandleNotFound(handle=handle.text)
                    raise ConcurrentUpdate(f"{handle.text} changed while it was being deleted; try again", handle=handle.text)
                await conn.fetchval(_LOG, handle.key, OP_DELETE)

    async def bulk_create(self, records: Iterable[Record]) -> int:
        """Load many new records with COPY in one transaction; returns how many were loaded."""
        rows, keys = [], []
        for record in records:
            rows.append(_row(self._stored(record), record.handle))
            keys.append(record.handle.key)
        if not rows:
            return 0
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                try:
                    await conn.copy_records_to_table("handles", records=rows, columns=_COPY_COLUMNS)
                except asyncpg.UniqueViolationError as exc:
                    raise HandleAlreadyExists(f"the batch holds a handle that exists already: {exc.detail}") from None
                await conn.fetchval("SELECT log_changes($1::text[], $2::smallint)", keys, OP_CREATE)
        return len(rows)

    async def home(self, prefix: str, prefix_record: Record | None = None) -> bool:
        """Home a prefix; also create its ``0.NA/<prefix>`` record if given and absent. False if already homed."""
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                added = await conn.fetchval(
                    "INSERT INTO prefixes (prefix, spelled) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                    fold(prefix),
                    prefix,
                )
                if prefix_record is not None:
                    h = prefix_record.handle
                    created = await conn.fetchval(_INSERT, *_row(self._stored(prefix_record), h))
                    if created is not None:
                        await conn.fetchval(_LOG, h.key, OP_CREATE)
                if added:
                    await conn.fetchval(_LOG, prefix_change_key(prefix), OP_HOME)
        return bool(added)

    async def unhome(self, prefix: str) -> bool:
        """Stop answering for a prefix (its records stay). False if it was not homed."""
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                removed = await conn.fetchval("DELETE FROM prefixes WHERE prefix = $1 RETURNING true", fold(prefix))
                if removed:
                    await conn.fetchval(_LOG, prefix_change_key(prefix), OP_UNHOME)
        return bool(removed)

    async def due_for_signing(self, before: int, limit: int) -> list[str]:
        """Keys of records under homed prefixes (and prefix records they cover) that are unsigned or
        whose signature expires before ``before``, soonest first. Records of a prefix that is not homed
        stay out of the queue, keeping their expiry for when it is homed again."""
        with unavailable_on_driver_errors():
            rows = await self._pool.fetch(_DUE, before, limit)
        return [r["handle"] for r in rows]

    async def ping(self) -> bool:
        with unavailable_on_driver_errors():
            return await self._pool.fetchval("SELECT true")
