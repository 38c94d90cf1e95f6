"""The change log as a stream: ``changes_since(cursor) -> (changes, next_cursor, more)``.

A cursor is the ``seq`` of the last change a reader has applied. Because ``seq`` values are handed out
in commit order (see ``log_change`` in migration 0001), a reader that resumes from its cursor never
skips a committed change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

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
