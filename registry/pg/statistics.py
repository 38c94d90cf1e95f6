"""Hourly statistics per prefix in PostgreSQL: added to in bounded batches, read by prefix and time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

import asyncpg

from ..model import fold
from .db import unavailable_on_driver_errors

BATCH = 1000
_ADD = """
INSERT INTO statistics (prefix, spelled, hour, resolutions, not_found, registrations)
SELECT upper_prefix, spelled, $1, resolutions, not_found, registrations
FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
     AS t(upper_prefix, spelled, resolutions, not_found, registrations)
ON CONFLICT (prefix, hour) DO UPDATE SET
    resolutions = statistics.resolutions + EXCLUDED.resolutions,
    not_found = statistics.not_found + EXCLUDED.not_found,
    registrations = statistics.registrations + EXCLUDED.registrations
"""
_READ = """
SELECT spelled, hour, resolutions, not_found, registrations FROM statistics
WHERE prefix = ANY($1::text[]) AND hour >= $2 AND hour < $3 ORDER BY prefix, hour
"""


@dataclass(frozen=True)
class HourCounts:
    prefix: str
    hour: datetime
    resolutions: int
    not_found: int
    registrations: int


async def add_counts(pool: asyncpg.Pool, hour: datetime, rows: Sequence[tuple[str, int, int, int]]) -> None:
    """Add (prefix, resolutions, not_found, registrations) to the counts of ``hour``, a batch per statement."""
    for start in range(0, len(rows), BATCH):
        batch = rows[start:start + BATCH]
        columns = list(zip(*batch))
        with unavailable_on_driver_errors():
            await pool.execute(_ADD, hour, [fold(p) for p in columns[0]], list(columns[0]), *[list(c) for c in columns[1:]])


async def read_counts(pool: asyncpg.Pool, prefixes: Sequence[str], start: datetime, end: datetime) -> list[HourCounts]:
    """The hourly counts of these prefixes from ``start`` (included) to ``end`` (excluded)."""
    with unavailable_on_driver_errors():
        rows = await pool.fetch(_READ, [fold(p) for p in prefixes], start, end)
    return [HourCounts(r["spelled"], r["hour"], r["resolutions"], r["not_found"], r["registrations"]) for r in rows]
