"""Keeping the per-prefix statistics: what the process counted goes to PostgreSQL, a bounded batch at a
time, every ``IDRES_STATISTICS_FLUSH_INTERVAL`` seconds, counted to the hour in which it is flushed."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Callable

import asyncpg

from registry.errors import IdresError
from registry.pg.statistics import add_counts

from ..resolution.statistics import Statistics

log = logging.getLogger(__name__)


class StatisticsFlusher:
    def __init__(self, pool: asyncpg.Pool, statistics: Statistics, interval: float,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._pool = pool
        self._reader = statistics.reader()
        self._interval = interval
        self._clock = clock
        self._pending: dict[str, list[int]] = {}  # counted, not yet stored (the database was away)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> int:
        """Store what was counted since the last flush; what the database refuses waits for the next one."""
        for counts in self._reader.take():
            row = self._pending.setdefault(counts.prefix, [0, 0, 0])
            row[0] += counts.resolutions
            row[1] += counts.not_found
            row[2] += counts.registrations
        if not self._pending:
            return 0
        hour = self._clock().replace(minute=0, second=0, microsecond=0)
        rows = [(prefix, *counts) for prefix, counts in self._pending.items()]
        try:
            await add_counts(self._pool, hour, rows)
        except IdresError as exc:
            log.debug("statistics not stored yet: %s", exc.message)
            return 0
        self._pending.clear()
        return len(rows)
