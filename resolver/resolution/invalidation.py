"""Keeps this process's cache coherent with the change log.

A dedicated connection LISTENs on the change channel; each NOTIFY (and, as a safety net, a poll every
``cache_poll_interval`` seconds) drains ``changes_since(cursor)`` and evicts the handles it names. A
home or unhome reloads the authority snapshot and empties the cache; a change to a prefix record
refreshes the delegation it describes.

Staleness bound: a write committed at time T is no longer served from this process's cache after
T + 2 × poll interval while the follower is connected; in practice NOTIFY makes it milliseconds. When
the connection is lost, the cache keeps answering (no write can commit while the database is down);
on reconnecting, the follower applies every change after its cursor before it reports itself
connected again, so a write committed while only this connection was lost is evicted as soon as the
connection is back. Only at the first connection (or when the log is behind the cursor: a restored
database) does the cache start empty.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import asyncpg

from registry.pg import db, feed
from registry.pg.db import driver_failure
from registry.errors import ConfigurationError, ServerUnavailable
from registry.pg.store import OP_HOME, OP_UNHOME

from ..core.health import DatabaseHealth
from .engine import Engine
from .keeper import AuthorityKeeper

log = logging.getLogger(__name__)


class ChangeFollower:
    def __init__(
        self,
        dsn: str,
        engine: Engine,
        keeper: AuthorityKeeper,
        poll_interval: float = 1.0,
        health: DatabaseHealth | None = None,
    ) -> None:
        self._dsn = dsn
        self._engine = engine
        self._keeper = keeper
        self._interval = poll_interval
        self._health = health if health is not None else DatabaseHealth()
        self._wake = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self.cursor: int | None = None
        self.connected = False
        self.applied = 0
        self.caught_up_at = time.monotonic()  # when the follower last knew it had every change of the log
        self.listeners: list[Callable[[int], None]] = []  # told the cursor after each drain that found changes

    async def run(self) -> None:
        """Follow the change log until cancelled, reconnecting with backoff."""
        backoff = 0.1
        while True:
            try:
                await self._connect()
                backoff = 0.1
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (ServerUnavailable, ConfigurationError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
                self._health.lost(getattr(exc, "cause", "") or driver_failure(exc))
                log.debug("change follower lost the database: %s", exc)
            finally:
                self._lost()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._interval)  # back within a poll interval of the database's return

    async def _connect(self) -> None:
        conn = await db.connect(self._dsn)
        self._conn = conn
        await conn.add_listener(feed.CHANNEL, self._notified)
        conn.add_termination_listener(lambda _c: self._wake.set())
        head = await feed.head(conn)
        if self.cursor is None or head < self.cursor:
            # The first connection, or a database whose log is behind what was seen: start clean.
            self.cursor = head
            await self._keeper.reload()
            self._engine.set_enabled(True)
            caught_up = 0
            log.info("change follower connected at seq %d", self.cursor)
        else:
            caught_up = await self.drain()  # what was written while this connection was down
        self.connected = True
        self._health.back(caught_up)

    def _notified(self, *_args: object) -> None:
        self._wake.set()

    async def _follow(self) -> None:
        while True:
            try:  # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a cancellation
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._conn is None or self._conn.is_closed():
                raise ServerUnavailable("listener connection closed")
            async with asyncio.timeout(self._interval):
                await self.drain()
            self._health.back()  # the database answers (if requests had found it gone meanwhile)

    async def drain(self) -> int:
        """Apply every change after the cursor; returns how many were applied."""
        assert self._conn is not None
        applied, more = 0, True
        while more:
            changes, self.cursor, more = await feed.changes_since(self._conn, self.cursor)
            homing_changed = False
            for change in changes:
                homing_changed |= change.op in (OP_HOME, OP_UNHOME)
                self._engine.invalidate(change.handle)
            if homing_changed:
                await self._keeper.reload()
            else:
                await self._keeper.refresh(c.handle for c in changes)
            applied += len(changes)
        self.applied += applied
        self.caught_up_at = time.monotonic()
        if applied:
            for listener in self.listeners:
                listener(self.cursor)
        return applied

    def _lost(self) -> None:
        self.connected = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        self._lost()
