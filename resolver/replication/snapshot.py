"""Snapshots other nodes bootstrap from: every record of some prefixes from one consistent read, as NDJSON,
streamed from a server-side cursor (memory stays constant however many records there are).

After every ``chunk`` records of a prefix (and once at the end of each prefix) comes a ``chunk`` line
with the SHA-256 of the record lines before it and, when this node homes the prefix and signs, its
seal (``seals.py``). A failure after the stream started ends it with an ``error`` line and no ``end``
line, so that the reader knows it is incomplete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import AsyncIterator, Callable

import asyncpg

from registry.errors import IdresError, ResponseCode, TooBusy
from registry.model import fold
from registry.pg import feed

from . import seals
from .wire import ChunkInfo, LineDigest, end_line, error_line, header_line, record_line

log = logging.getLogger(__name__)
FLUSH_BYTES = 256 * 1024
SNAPSHOTS_AT_ONCE = 2  # per process


class SnapshotService:
    def __init__(self, pool: asyncpg.Pool, sealer: seals.Sealer | None, *, seal: bool = True, at_once: int = SNAPSHOTS_AT_ONCE,
                 clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self._sealer = sealer if seal else None
        self._clock = clock
        self._slots = asyncio.Semaphore(at_once)

    def reserve(self) -> contextlib.AbstractAsyncContextManager:
        """A slot for one snapshot: each holds a database connection for as long as it streams, so a process
        streams only a few at once; TooBusy (503, try again) beyond them."""
        if self._slots.locked():
            raise TooBusy("this node is streaming as many snapshots as it may at once; try again shortly")
        return self._slots

    async def stream(self, prefixes: list[str], chunk: int) -> AsyncIterator[bytes]:
        """The snapshot's bytes, a few hundred kilobytes at a time."""
        async with self._pool.acquire() as conn:
            try:
                async with feed.snapshot(conn) as snapshot:
                    yield header_line(snapshot.cursor, prefixes, chunk, self._sealer is not None)
                    total = 0
                    for prefix in prefixes:
                        async for block, count in self._prefix(snapshot, fold(prefix), chunk):
                            total += count
                            yield block
                    yield end_line(total, snapshot.cursor)
            except IdresError as exc:
                log.warning("a snapshot of %s broke off: %s", ", ".join(prefixes), getattr(exc, "cause", "") or exc.message)
                yield error_line(exc.response_code or ResponseCode.ERROR, exc.message)

    async def _prefix(self, snapshot: feed.Snapshot, prefix: str, chunk: int) -> AsyncIterator[tuple[bytes, int]]:
        """(bytes, records in them) of one prefix: record lines and chunk lines."""
        lines: list[bytes] = []
        size = count = number = 0
        digest = LineDigest()
        async for rows in snapshot.records(prefix, batch=min(chunk, 1000)):
            for row in rows:
                line = record_line(row)
                digest.add(line)
                lines.append(line)
                size += len(line)
                count += 1
                if digest.count == chunk:
                    number += 1
                    lines.append(self._chunk_line(prefix, number, digest, snapshot.cursor))
                    digest = LineDigest()
            if size >= FLUSH_BYTES:
                yield b"".join(lines), count
                lines, size, count = [], 0, 0
        if digest.count or number == 0:
            number += 1
            lines.append(self._chunk_line(prefix, number, digest, snapshot.cursor))
        yield b"".join(lines), count

    def _chunk_line(self, prefix: str, number: int, digest: LineDigest, cursor: int) -> bytes:
        chunk = ChunkInfo(prefix, number, digest.count, digest.hexdigest())
        sealed = seals.seal(self._sealer, chunk, cursor, int(self._clock()))
        return ChunkInfo(prefix, number, digest.count, chunk.sha256, sealed).line()
