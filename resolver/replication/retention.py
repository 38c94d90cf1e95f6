"""Pruning the change log past its retention horizon, in bounded batches, by one process of the node at a time.

Every worker runs a ``ChangeLogPruner``; each batch is its own short transaction that first takes a
PostgreSQL advisory lock (``pg_try_advisory_xact_lock(7310023)``), so that only one process prunes at a
time. A tick deletes batches of the oldest changes older than ``sync_retention`` until none is left
(never the newest change), and moves the horizon: a follower whose cursor is below it is answered 410
and takes a fresh snapshot.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Callable

import asyncpg

from registry.pg import feed
from registry.pg.db import unavailable_on_driver_errors

from ..core.periodic import every

log = logging.getLogger(__name__)
PRUNING_LOCK = 7310023
MAX_BATCHES_PER_TICK = 100


class ChangeLogPruner:
    def __init__(self, pool: asyncpg.Pool, *, retention: int, batch: int, interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self._retention = retention
        self._batch = batch
        self._interval = interval
        self._clock = clock
        self.pruned = 0

    async def run(self) -> None:
        await every(self._interval, self.tick, lambda exc: log.debug("change-log pruning skipped a tick: %s", exc.message))

    async def tick(self) -> int:
        """Prune what is past the horizon, a batch per transaction; returns how many changes were deleted."""
        before = datetime.fromtimestamp(self._clock() - self._retention, timezone.utc)
        deleted = 0
        for _ in range(MAX_BATCHES_PER_TICK):
            pruned = await self._batch_if_leader(before)
            deleted += pruned
            if pruned < self._batch:
                break
        if deleted:
            self.pruned += deleted
            log.info("pruned %d changes older than %s from the change log", deleted, before.isoformat(timespec="seconds"))
        return deleted

    async def _batch_if_leader(self, before: datetime) -> int:
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PRUNING_LOCK):
                    return 0
                return await feed.prune(conn, before, self._batch)
