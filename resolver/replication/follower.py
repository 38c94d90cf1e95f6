"""The follower of one mirrored prefix: a snapshot first, then the origin's change feed, long-polled.

Every chunk of a snapshot and every page of the feed is applied in one transaction together with the
mirror's progress (``registry.pg.mirrors``), on the connection that holds the mirror's lease: a crash
loses at most the transaction in flight, which is asked for again. A page is applied only if the
stored cursor is still the one it was asked after, so it is never applied twice nor skipped. Errors of
the origin are retried with exponential back-off and jitter; a cursor the origin can no longer continue
(HTTP 410) brings a fresh snapshot, which replaces what is held.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Awaitable, Callable

import asyncpg

from registry.errors import ConcurrentUpdate, SnapshotNeeded, UpstreamInvalid, UpstreamUnavailable
from registry.pg import mirrors
from registry.pg.feed import RecordRow
from registry.pg.mirrors import Batch, Mirror

from ..config import Replication
from .checks import RecordChecks
from .client import OriginClient
from .snapshot_reader import SnapshotReader
from .wire import ChunkInfo, Page

log = logging.getLogger(__name__)
FIRST_BACKOFF = 0.5
LOGGED_REJECTIONS = 10
STOP_TIMEOUT = 10.0
RETRIED = (UpstreamUnavailable, UpstreamInvalid)


class LeaseLost(Exception):
    """Another process applied this mirror's changes: this one stops following it."""


def backoff(failures: int, ceiling: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the n-th failure in a row: doubling from 0.5 s up to ``ceiling``, less up to half at random."""
    return min(ceiling, FIRST_BACKOFF * 2 ** max(0, failures - 1)) * (0.5 + rng() / 2)


class MirrorFollower:
    def __init__(self, mirror: Mirror, conn: asyncpg.Connection, client: OriginClient, checks: RecordChecks,
                 owns: Callable[[str], bool], settings: Replication, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.prefix = mirror.prefix
        self.cursor = mirror.cursor
        self._conn = conn
        self._client = client
        self._checks = checks
        self._owns = owns
        self._settings = settings
        self._sleep = sleep
        self.failures = 0
        self._failure: str | None = None
        self._failing_since: float | None = None
        self.rejected = 0  # records refused since this follower started
        self.origin_head = mirror.cursor or 0  # the origin's head when it last answered
        self.checked = {"by seal": 0, "one by one": 0}  # records of the last snapshot, by how they were checked
        self.verification = "none" if checks.anchor is None else "sealed" if checks.seals_suffice else "records"

    async def run(self) -> None:
        """Follow until cancelled; LeaseLost or a database error end it (the supervisor decides what next)."""
        while True:
            try:
                if self.cursor is None:
                    await self.bootstrap()
                await self.follow()
            except SnapshotNeeded as exc:
                log.warning("mirror of %s: %s; taking a fresh snapshot", self.prefix, exc.message)
                self.cursor = None
            except ConcurrentUpdate as exc:
                raise LeaseLost(exc.message) from None
            except RETRIED as exc:
                await self._failed(exc.message)

    async def _failed(self, message: str) -> None:
        """Wait before trying again; the log says so when the failure starts or changes, not at every try."""
        self.failures += 1
        delay = backoff(self.failures, self._settings.mirror_backoff_max)
        if message != self._failure:
            log.warning("mirror of %s: %s; trying again with back-off (up to %g s)", self.prefix, message,
                        self._settings.mirror_backoff_max)
            self._failure, self._failing_since = message, self._failing_since or time.monotonic()
        await mirrors.note(self._conn, self.prefix, error=message)
        await self._sleep(delay)

    def _succeeded(self) -> None:
        if self._failing_since is not None:
            log.info("mirror of %s: the origin answers again after %.1f s", self.prefix, time.monotonic() - self._failing_since)
        self.failures, self._failure, self._failing_since = 0, None, None

    # --- the snapshot --------------------------------------------------------------------------

    async def bootstrap(self) -> None:
        fresh = await mirrors.begin_snapshot(self._conn, self.prefix, self._owns)
        self.checked = {"by seal": 0, "one by one": 0}
        log.info("mirror of %s: taking a snapshot from %s", self.prefix, self._client.origin)
        async with self._client.snapshot(self._settings.mirror_batch) as lines:
            reader = SnapshotReader(lines, self._client.origin, digests=self._checks.anchor is not None)
            cursor = await reader.header()
            queue: asyncio.Queue = asyncio.Queue(maxsize=2)
            applier = asyncio.create_task(self._apply_chunks(queue, cursor, fresh))
            try:
                async for chunk, rows in reader.chunks():
                    await _hand_over(queue, (chunk, rows), applier)
                await _hand_over(queue, None, applier)
                await applier
            finally:
                await _stop(queue, applier)
        deleted = await mirrors.finish_snapshot(self._conn, self.prefix, cursor, replaced=not fresh, owns=self._owns)
        self.cursor = self.origin_head = cursor
        self._succeeded()
        how = "not verified" if self._checks.anchor is None else ", ".join(f"{n} {k}" for k, n in self.checked.items())
        log.info("mirror of %s: snapshot of %d records at cursor %d taken in (%s; %d deleted); following the feed",
                 self.prefix, reader.records, cursor, how, deleted)

    async def _apply_chunks(self, queue: asyncio.Queue, cursor: int, fresh: bool) -> None:
        while (item := await queue.get()) is not None:
            chunk, rows = item
            applied, refused = await self._checked_chunk(chunk, cursor, rows)
            held = [r.key for r in refused if self._checks.in_scope(r.key) and self._owns(r.key)]
            await mirrors.apply_chunk(self._conn, self.prefix, applied, fresh=fresh, rejected=len(refused), kept=held)

    async def _checked_chunk(self, chunk: ChunkInfo, cursor: int, rows: list[RecordRow]) -> tuple[list[RecordRow], list[RecordRow]]:
        """The rows to apply, and those refused."""
        kept, refused = [], []
        verdicts, sealed = await self._checks.chunk(chunk, cursor, rows)
        self.checked["by seal" if sealed else "one by one"] += len(rows)
        for original, (row, problem) in zip(rows, verdicts):
            if problem is not None:
                refused.append((original, problem))
            elif self._owns(row.key):
                kept.append(row)
        self._log_rejections([(r.spelled, p) for r, p in refused])
        return kept, [r for r, _ in refused]

    # --- the feed ------------------------------------------------------------------------------

    async def follow(self) -> None:
        wait = 0.0
        while True:
            assert self.cursor is not None
            page = await self._client.changes(self.cursor, self._settings.mirror_batch, wait)
            self.origin_head = page.head
            if page.changes or page.next_cursor != self.cursor:
                await mirrors.apply_batch(self._conn, self.prefix, self.cursor, await self._batch(page))
                self.cursor = page.next_cursor
            else:
                await mirrors.note(self._conn, self.prefix, head=page.head, caught_up=not page.more)
            self._succeeded()
            wait = 0.0 if page.more else self._settings.mirror_wait

    async def _batch(self, page: Page) -> Batch:
        """What a page changes here: each record checked once, its last state in the page applied."""
        records = {c.key: c.record for c in page.changes if c.record is not None}
        upserts: dict[str, RecordRow] = {}
        deletes: set[str] = set()
        changes: list[tuple[str, bool]] = []
        verdicts: dict[str, tuple[RecordRow | None, str | None]] = {}
        for change in page.changes:
            if change.op not in ("upsert", "delete") or not self._checks.in_scope(change.key) or not self._owns(change.key):
                continue
            if change.op == "upsert" and change.record is not None:
                if change.key not in verdicts:
                    verdicts[change.key] = await self._checks.record(change.record, records)
                row, problem = verdicts[change.key]
                if row is None:
                    continue
                upserts[change.key] = row
                deletes.discard(change.key)
            else:  # deleted, or an upsert of a record deleted since
                deletes.add(change.key)
                upserts.pop(change.key, None)
            changes.append((change.key, change.key in deletes))
        refused = [(records[k].spelled, p) for k, (_row, p) in verdicts.items() if p is not None]
        self._log_rejections(refused)
        return Batch(upserts, sorted(deletes), changes, page.next_cursor, page.head, len(refused), caught_up=not page.more)

    def _log_rejections(self, refused: list[tuple[str, str]]) -> None:
        self.rejected += len(refused)
        for handle, problem in refused[:LOGGED_REJECTIONS]:
            log.warning("mirror of %s: rejected %s from %s: %s", self.prefix, handle, self._client.origin, problem)
        if len(refused) > LOGGED_REJECTIONS:
            log.warning("mirror of %s: rejected %d more records of this batch", self.prefix, len(refused) - LOGGED_REJECTIONS)


async def _stop(queue: asyncio.Queue, applier: asyncio.Task) -> None:
    """Let the applier finish the chunk it is writing (a transaction is not cut short), then stop it."""
    if applier.done():
        return
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(None)
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            await asyncio.shield(applier)
    except TimeoutError:
        applier.cancel()
    except asyncio.CancelledError:
        applier.cancel()
        raise
    except Exception:  # its error is the reader's consequence or cause; the reader's own is raised
        pass


async def _hand_over(queue: asyncio.Queue, item: object, applier: asyncio.Task) -> None:
    """Put ``item`` for the applier, unless the applier failed (its error is raised here then)."""
    put = asyncio.ensure_future(queue.put(item))
    done, _ = await asyncio.wait({put, applier}, return_when=asyncio.FIRST_COMPLETED)
    if put not in done:
        put.cancel()
    if applier.done():
        applier.result()
        if put not in done:
            raise RuntimeError("the snapshot applier stopped early")
