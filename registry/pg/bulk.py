"""Loading many new records at once with COPY, for imports straight into the database.

The rows go to a temporary table with COPY, then into ``handles`` with ``ON CONFLICT DO NOTHING``: a
handle that exists already (an earlier import, another importer at the same time) is left as it is
and reported, not duplicated. The change log gets one entry per record inserted, with one log call per
load, in the same transaction.
"""

from __future__ import annotations

from typing import Sequence

import asyncpg

from .db import unavailable_on_driver_errors
from .groups import OP_CREATE
from ..records import StoredRecord

_COLUMNS = ["handle", "spelled", "prefix", "vals", "public_json", "min_ttl", "expires_at", "sig_expires"]
_STAGE = "CREATE TEMPORARY TABLE IF NOT EXISTS import_rows (LIKE handles INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
_MOVE = f"""
INSERT INTO handles ({", ".join(_COLUMNS)}) SELECT {", ".join(_COLUMNS)} FROM import_rows
ON CONFLICT (handle) DO NOTHING RETURNING handle
"""


async def load(pool: asyncpg.Pool, rows: Sequence[tuple[str, str, StoredRecord]]) -> tuple[set[str], dict[str, StoredRecord]]:
    """Insert ``(key, prefix key, row)`` for each new record; returns (keys inserted, rows that existed
    already, by key). One transaction."""
    records = [(key, s.handle, prefix, s.vals, s.public_json, s.min_ttl, s.expires_at, s.sig_expires) for key, prefix, s in rows]
    with unavailable_on_driver_errors():
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(_STAGE)
            await conn.copy_records_to_table("import_rows", records=records, columns=_COLUMNS)
            inserted = {r["handle"] for r in await conn.fetch(_MOVE)}
            keys = [key for key, _, _ in rows if key in inserted]
            if keys:
                await conn.fetchval("SELECT log_changes($1::text[], $2::smallint)", keys, OP_CREATE)
            others = [key for key, _, _ in rows if key not in inserted]
            existing = await conn.fetch(
                "SELECT handle, spelled, vals, public_json, min_ttl, expires_at, version, sig_expires FROM handles"
                " WHERE handle = ANY($1::text[])", others) if others else []
    found = {r["handle"]: StoredRecord(r["spelled"], r["vals"], r["public_json"], r["min_ttl"], r["expires_at"],
                                       r["version"], sig_expires=r["sig_expires"]) for r in existing}
    return inserted, found
