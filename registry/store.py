"""The PostgreSQL store: records, homed prefixes and the change log, through asyncpg.

Every write appends its change-log row in the same transaction (``log_change``), so the log is in
commit order and NOTIFY wakes caches and followers when the transaction commits. Methods return model
objects and raise registry errors; asyncpg types never leave this module.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import asyncpg

from .db import unavailable_on_driver_errors
from .errors import ConcurrentUpdate, HandleAlreadyExists, HandleNotFound
from .model import NA, Handle, Record, fold
from .records import StoredRecord

OP_CREATE, OP_DELETE, OP_UPDATE, OP_HOME, OP_UNHOME = 1, 2, 3, 4, 5

_COLUMNS = "spelled, vals, public_json, min_ttl, expires_at, version"
_GET = f"SELECT {_COLUMNS} FROM handles WHERE handle = $1"
_GET_MANY = f"SELECT handle, {_COLUMNS} FROM handles WHERE handle = ANY($1::text[])"
_INSERT = (
    "INSERT INTO handles (handle, spelled, prefix, vals, public_json, min_ttl, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (handle) DO NOTHING RETURNING version"
)
_UPDATE = (
    "UPDATE handles SET vals = $3, public_json = $4, min_ttl = $5, expires_at = $6,"
    " version = version + 1, updated_at = now() WHERE handle = $1 AND version = $2 RETURNING version"
)
_DELETE = "DELETE FROM handles WHERE handle = $1 AND ($2::bigint IS NULL OR version = $2) RETURNING version"
_LOG = "SELECT log_change($1, $2::smallint)"


def _stored(row: asyncpg.Record) -> StoredRecord:
    return StoredRecord(row["spelled"], row["vals"], row["public_json"], row["min_ttl"], row["expires_at"], row["version"])


def prefix_change_key(prefix: str) -> str:
    return fold(f"{NA}/{prefix}")


class Store:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # --- reads -----------------------------------------------------------------------------------

    async def get(self, key: str) -> StoredRecord | None:
        """The record whose comparison key is ``key``, or None."""
        with unavailable_on_driver_errors():
            row = await self._pool.fetchrow(_GET, key)
        return _stored(row) if row is not None else None

    async def get_many(self, keys: Sequence[str]) -> dict[str, StoredRecord]:
        with unavailable_on_driver_errors():
            rows = await self._pool.fetch(_GET_MANY, list(keys))
        return {row["handle"]: _stored(row) for row in rows}

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

    async def homed_prefixes(self) -> list[str]:
        with unavailable_on_driver_errors():
            rows = await self._pool.fetch("SELECT spelled FROM prefixes ORDER BY prefix")
        return [r["spelled"] for r in rows]

    # --- writes ----------------------------------------------------------------------------------

    async def create(self, record: Record) -> StoredRecord:
        """Insert a new record; HandleAlreadyExists if the handle is taken."""
        stored = StoredRecord.from_record(record)
        h = record.handle
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                version = await conn.fetchval(
                    _INSERT, h.key, h.text, h.prefix_key, stored.vals, stored.public_json, stored.min_ttl, stored.expires_at
                )
                if version is None:
                    raise HandleAlreadyExists(handle=h.text)
                await conn.fetchval(_LOG, h.key, OP_CREATE)
        return stored

    async def replace(self, record: Record, expected_version: int) -> StoredRecord:
        """Overwrite a record if it is still at ``expected_version``; ConcurrentUpdate otherwise."""
        stored = StoredRecord.from_record(record)
        h = record.handle
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                version = await conn.fetchval(
                    _UPDATE, h.key, expected_version, stored.vals, stored.public_json, stored.min_ttl, stored.expires_at
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
            stored = StoredRecord.from_record(record)
            h = record.handle
            rows.append((h.key, h.text, h.prefix_key, stored.vals, stored.public_json, stored.min_ttl, stored.expires_at))
            keys.append(h.key)
        if not rows:
            return 0
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.copy_records_to_table(
                    "handles",
                    records=rows,
                    columns=["handle", "spelled", "prefix", "vals", "public_json", "min_ttl", "expires_at"],
                )
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
                    stored = StoredRecord.from_record(prefix_record)
                    h = prefix_record.handle
                    created = await conn.fetchval(
                        _INSERT, h.key, h.text, h.prefix_key, stored.vals, stored.public_json, stored.min_ttl, stored.expires_at
                    )
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

    async def ping(self) -> bool:
        with unavailable_on_driver_errors():
            return await self._pool.fetchval("SELECT true")
