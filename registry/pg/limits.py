"""Rate-limit counters shared by every process of a node: fixed windows, one row per key and window."""

from __future__ import annotations

from typing import Sequence

import asyncpg

from .db import unavailable_on_driver_errors

_ADD = """
INSERT INTO rate_counts (key, started, count) SELECT k, $2, c FROM unnest($1::text[], $3::int[]) AS t(k, c)
ON CONFLICT (key, started) DO UPDATE SET count = rate_counts.count + EXCLUDED.count
RETURNING key, count
"""


async def add(pool: asyncpg.Pool, keys: Sequence[str], started: int, increments: Sequence[int]) -> dict[str, int]:
    """Add ``increments`` to the counts of ``keys`` in the window starting at ``started``; the new counts."""
    with unavailable_on_driver_errors():
        rows = await pool.fetch(_ADD, list(keys), started, list(increments))
    return {r["key"]: r["count"] for r in rows}


async def counts(pool: asyncpg.Pool, keys: Sequence[str], started: int) -> dict[str, int]:
    with unavailable_on_driver_errors():
        rows = await pool.fetch("SELECT key, count FROM rate_counts WHERE key = ANY($1::text[]) AND started = $2",
                                list(keys), started)
    return {r["key"]: r["count"] for r in rows}


async def prune(pool: asyncpg.Pool, before: int) -> None:
    """Forget the windows that started before ``before``."""
    with unavailable_on_driver_errors():
        await pool.execute("DELETE FROM rate_counts WHERE started < $1", before)
