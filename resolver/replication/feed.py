"""The change feed other nodes follow: pages of the change log with their records, long-polled.

A long-poll holds no database connection while it waits: it waits on the ``ChangeBell`` that this
process's change follower (``resolution.invalidation``) rings after each drain, which happens on every
NOTIFY of the change channel (and at worst every cache poll interval), then reads again.
"""

from __future__ import annotations

import asyncio

import asyncpg

from registry.pg import feed
from registry.pg.feed import FeedPage


class ChangeBell:
    """Rung with the newest seq whenever new changes were committed; waiters wake at once."""

    def __init__(self) -> None:
        self.cursor = 0
        self._event = asyncio.Event()

    def ring(self, cursor: int) -> None:
        self.cursor = cursor
        event, self._event = self._event, asyncio.Event()
        event.set()

    def waiter(self) -> asyncio.Event:
        """The event the next ring sets: taken before reading, so that no ring between the read and the wait is missed."""
        return self._event


class FeedService:
    def __init__(self, pool: asyncpg.Pool, bell: ChangeBell) -> None:
        self._pool = pool
        self._bell = bell
        self.closing = False

    def close(self) -> None:
        """Answer every waiting long-poll now (the node is shutting down), and wait no more."""
        self.closing = True
        self._bell.ring(self._bell.cursor)

    async def changes(self, after: int, limit: int, prefixes: tuple[str, ...], wait: float) -> FeedPage:
        """Up to ``limit`` changes of ``prefixes`` after ``after``; when there are none, wait up to ``wait`` seconds
        for some. SnapshotNeeded when the cursor cannot be continued."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        cursor = after
        while True:
            woken = self._bell.waiter()
            async with self._pool.acquire() as conn:
                page = await feed.page(conn, cursor, limit, prefixes)
            remaining = deadline - loop.time()
            if page.entries or page.more or remaining <= 0 or self.closing:
                return page
            cursor = page.next_cursor  # a quiet prefix: the log moved on without it
            try:
                async with asyncio.timeout(remaining):
                    await woken.wait()
            except TimeoutError:
                pass
