"""Coalesced reads: the records asked for within one turn of the event loop go to the store as one query.

Under load, many requests miss the cache at once, each for its own handle. Read one by one, each
takes a pooled connection and a round trip, and the requests that wait longest for a connection make
the tail. ``CoalescingSource`` gathers the keys asked for until the event loop has run every callback
that is ready, then reads them with one ``handle = ANY($1)`` query (in chunks of ``max_batch``); every
waiting request gets its record from that answer, in the order the loop serves them.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, Sequence

from registry.records import StoredRecord

MAX_BATCH = 256


class ManySource(Protocol):
    async def get_many(self, keys: Sequence[str]) -> dict[str, StoredRecord]: ...


class CoalescingSource:
    def __init__(self, source: ManySource, max_batch: int = MAX_BATCH) -> None:
        self._source = source
        self._max_batch = max_batch
        self._pending: dict[str, list[asyncio.Future]] = {}
        self._scheduled = False
        self._loading: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks
        self.queries = 0

    async def get(self, key: str) -> StoredRecord | None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.setdefault(key, []).append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        keys = list(pending)
        for start in range(0, len(keys), self._max_batch):
            chunk = {k: pending[k] for k in keys[start:start + self._max_batch]}
            task = asyncio.ensure_future(self._load(chunk))
            self._loading.add(task)
            task.add_done_callback(self._loading.discard)

    async def _load(self, chunk: dict[str, list[asyncio.Future]]) -> None:
        self.queries += 1
        try:
            found = await self._source.get_many(list(chunk))
        except BaseException as exc:  # every waiter gets the failure, whatever it is
            for futures in chunk.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key, futures in chunk.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(key))
