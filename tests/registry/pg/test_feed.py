"""The change log as a stream (registry/feed.py): paging, head, NOTIFY, and decision 3 of the design
guide: the log is in commit order, with no gap a reader resuming from its cursor could skip."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import datetime, timezone

import asyncpg
import pytest

from registry.pg import db, feed
from registry.errors import ConcurrentUpdate
from registry.model import Handle, HandleValue, Record
from registry.records import StoredRecord
from registry.pg.store import OP_CREATE, OP_DELETE, OP_HOME, OP_UPDATE, Store

# A raw write, as Store.create does it: the row, then its change-log entry, in one transaction.
INSERT = (
    "INSERT INTO handles (handle, spelled, prefix, vals, public_json, min_ttl, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
LOG = "SELECT log_change($1, $2::smallint)"


def record(text: str, data: str = "x") -> Record:
    return Record(Handle.parse(text), (HandleValue(1, "URL", data.encode()),))


async def raw_insert(conn: asyncpg.Connection, text: str) -> int:
    """Insert a record and log its creation inside the caller's transaction; returns its seq."""
    rec = record(text)
    stored = StoredRecord.from_record(rec)
    h = rec.handle
    await conn.execute(INSERT, h.key, h.text, h.prefix_key, stored.vals, stored.public_json, stored.min_ttl, stored.expires_at)
    return await conn.fetchval(LOG, h.key, OP_CREATE)


async def until(condition, message: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.002)  # poll interval


# --- paging --------------------------------------------------------------------------------------


async def test_changes_since_pages_through_the_log(store, dsn):
    async with db.connection(dsn) as conn:
        start = await feed.head(conn)
        for n in range(5):
            await store.create(record(f"88.101/p{n}"))
        await store.replace(record("88.101/p0", "v2"), 1)
        await store.delete(Handle.parse("88.101/P1"))
        head = await feed.head(conn)
        everything, cursor, more = await feed.changes_since(conn, start)
        assert (cursor, more) == (head, False)
        assert [(c.handle, c.op) for c in everything] == (
            [(f"88.101/P{n}", OP_CREATE) for n in range(5)] + [("88.101/P0", OP_UPDATE), ("88.101/P1", OP_DELETE)]
        )
        seqs = [c.seq for c in everything]
        assert seqs == list(range(seqs[0], seqs[0] + 7)) and seqs[0] > start and seqs[-1] == head  # no gaps
        assert all(isinstance(c.at, datetime) and c.at.tzinfo is not None for c in everything)
        assert all(abs((datetime.now(timezone.utc) - c.at).total_seconds()) < 60 for c in everything)

        pages, cursor = [], start
        while True:
            changes, next_cursor, more = await feed.changes_since(conn, cursor, limit=3)
            assert len(changes) <= 3
            assert next_cursor == (changes[-1].seq if changes else cursor)
            pages.append((len(changes), more))
            cursor = next_cursor
            if not more:
                break
        assert pages == [(3, True), (3, True), (1, False)]
        assert cursor == head

        # exactly ``limit`` left: they all come, and ``more`` is False
        changes, cursor, more = await feed.changes_since(conn, seqs[3], limit=3)
        assert ([c.seq for c in changes], cursor, more) == (seqs[4:], head, False)
        # at the head: nothing, the cursor stays, nothing more
        assert await feed.changes_since(conn, head) == ([], head, False)
        assert await feed.changes_since(conn, head + 1000, limit=5) == ([], head + 1000, False)
        # a cursor in the middle resumes right after it
        changes, _, _ = await feed.changes_since(conn, seqs[2], limit=1)
        assert [c.seq for c in changes] == [seqs[3]]


async def test_changes_since_and_head_accept_a_pool(store, dsn):
    pool = await db.create_pool(dsn, max_size=1)
    try:
        assert await feed.head(pool) == 0  # the log is empty
        assert await feed.changes_since(pool, 0) == ([], 0, False)
        await store.home("88.101")
        head = await feed.head(pool)
        assert head > 0
        changes, cursor, more = await feed.changes_since(pool, 0, limit=10)
        assert [(c.seq, c.handle, c.op) for c in changes] == [(head, "0.NA/88.101", OP_HOME)]
        assert (cursor, more) == (head, False)
    finally:
        await pool.close()


async def test_bulk_create_logs_one_change_per_record_in_order(store, dsn):
    async with db.connection(dsn) as conn:
        start = await feed.head(conn)
        await store.bulk_create(record(f"88.101/B{n:02d}") for n in range(12))
        changes, cursor, more = await feed.changes_since(conn, start, limit=100)
    assert [c.handle for c in changes] == [f"88.101/B{n:02d}" for n in range(12)]
    seqs = [c.seq for c in changes]
    assert seqs == list(range(seqs[0], seqs[0] + 12)) and seqs[0] > start
    assert (cursor, more) == (seqs[-1], False)


# --- NOTIFY --------------------------------------------------------------------------------------


async def test_notify_on_commit_and_none_on_rollback(store, dsn):
    listener = await db.connect(dsn)
    writer = await db.connect(dsn)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener(feed.CHANNEL, lambda _conn, _pid, _channel, payload: payloads.put_nowait(payload))

        await store.create(record("88.101/N1"))
        seq = await feed.head(writer)
        assert await asyncio.wait_for(payloads.get(), 5) == str(seq)

        # A write that logs its change and then rolls back: no row, no notification.
        tx = writer.transaction()
        await tx.start()
        rolled_back = await raw_insert(writer, "88.101/N2")
        await tx.rollback()
        # A refused write (stale version) rolls back before logging anything.
        with pytest.raises(ConcurrentUpdate):
            await store.replace(record("88.101/N1", "lost"), 7)

        # Notifications arrive in commit order: once this later commit's arrives, any from the
        # rolled-back transaction would already be in the queue.
        await store.replace(record("88.101/N1", "v2"), 1)
        later = await feed.head(writer)
        assert later > rolled_back
        assert await asyncio.wait_for(payloads.get(), 5) == str(later)
        assert payloads.empty()

        assert await writer.fetchval("SELECT count(*) FROM changes WHERE seq = $1", rolled_back) == 0
        assert await store.get("88.101/N2") is None
        changes, _, _ = await feed.changes_since(writer, seq - 1)
        assert [(c.seq, c.handle, c.op) for c in changes] == [(seq, "88.101/N1", OP_CREATE), (later, "88.101/N1", OP_UPDATE)]
    finally:
        await listener.close()
        await writer.close()


async def test_notify_arrives_only_at_commit(store, dsn):
    listener = await db.connect(dsn)
    writer = await db.connect(dsn)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener(feed.CHANNEL, lambda _conn, _pid, _channel, payload: payloads.put_nowait(payload))
        tx = writer.transaction()
        await tx.start()
        seq = await raw_insert(writer, "88.101/LATE")
        # Not committed yet: the reader sees no change, so a NOTIFY now would wake it for nothing.
        # (A round trip on the listener connection processes anything the server already sent.)
        await listener.fetchval("SELECT 1")
        assert payloads.empty()
        assert await feed.changes_since(listener, seq - 1) == ([], seq - 1, False)
        await tx.commit()
        assert await asyncio.wait_for(payloads.get(), 5) == str(seq)
        changes, _, _ = await feed.changes_since(listener, seq - 1)
        assert [c.seq for c in changes] == [seq]
    finally:
        await listener.close()
        await writer.close()


# --- commit order under concurrency --------------------------------------------------------------


class Reader:
    """A follower: reads the log from its cursor, over and over, as replication does."""

    def __init__(self, conn: asyncpg.Connection, cursor: int) -> None:
        self.conn = conn
        self.cursor = cursor
        self.seen: list[int] = []
        self.reads = 0

    async def read_once(self) -> bool:
        changes, next_cursor, more = await feed.changes_since(self.conn, self.cursor, limit=5)
        seqs = [c.seq for c in changes]
        assert seqs == sorted(seqs) and all(s > self.cursor for s in seqs), (self.cursor, seqs)
        self.seen.extend(seqs)
        self.cursor = next_cursor
        self.reads += 1
        return more

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.read_once()

    async def drain(self) -> None:
        while await self.read_once():
            pass


async def test_log_is_in_commit_order_with_no_gap_a_reader_could_skip(dsn):
    """20 concurrent writers on their own connections, a reader following the log from its cursor.

    Why this exercises the advisory lock in ``log_change``: the "holder" writers take their seq and
    then keep their transaction open. Each holds until either another writer is blocked waiting on a
    lock (with the advisory lock, every other writer queues at ``log_change`` behind the holder), or
    the reader's cursor has moved past the holder's uncommitted seq. Without the lock the first never
    happens, while the plain writers go on taking higher seqs and committing, and the reader follows
    them past the holder's seq; when the holder then commits, its change lies behind the reader's
    cursor and the reader never sees it. The test catches that both directly (a holder finds the
    cursor past its seq) and at the end (a committed change the reader never saw).
    """
    stop_plain = asyncio.Event()
    stop_reader = asyncio.Event()
    expected: collections.Counter[tuple[str, int]] = collections.Counter()
    held_committed: list[int] = []
    held_rolled_back: list[int] = []
    rolled_back_keys: list[str] = []
    passed_while_held: list[tuple[int, int]] = []
    holds_released_by_waiters = 0

    monitor = await db.create_pool(dsn, min_size=2, max_size=8)
    start = await feed.head(monitor)
    reader = Reader(await db.connect(dsn), start)
    pools: list[asyncpg.Pool] = []
    conns: list[asyncpg.Connection] = []

    async def plain_writer(n: int) -> None:
        pool = await db.create_pool(dsn, min_size=1, max_size=1)
        pools.append(pool)
        store = Store(pool)
        round = 0
        while round < 3 or not stop_plain.is_set():
            text = f"88.101/W{n:02d}-{round:03d}"
            key = text.upper()
            await store.create(record(text))
            expected[(key, OP_CREATE)] += 1
            await store.replace(record(text, "v2"), 1)
            expected[(key, OP_UPDATE)] += 1
            with pytest.raises(ConcurrentUpdate):  # refused: writes and logs nothing
                await store.replace(record(text, "stale"), 1)
            round += 1
            assert round < 2000, "the holders never finished"

    async def bulk_writer(n: int) -> None:
        pool = await db.create_pool(dsn, min_size=1, max_size=1)
        pools.append(pool)
        store = Store(pool)
        round = 0
        while round < 2 or not stop_plain.is_set():
            texts = [f"88.101/BULK{n:02d}-{round:03d}-{i}" for i in range(3)]
            await store.bulk_create(record(t) for t in texts)
            expected.update((t.upper(), OP_CREATE) for t in texts)
            round += 1
            assert round < 2000, "the holders never finished"

    async def someone_else_waits_or_reader_passed(pid: int, seq: int) -> bool:
        if reader.cursor >= seq:
            return True
        return await monitor.fetchval("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND pid <> $1)", pid)

    async def holder(n: int, commit: bool) -> None:
        nonlocal holds_released_by_waiters
        conn = await db.connect(dsn)
        conns.append(conn)
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        for round in range(3):
            text = f"88.101/H{n:02d}-{round}"
            tx = conn.transaction()
            await tx.start()
            seq = await raw_insert(conn, text)
            await until(lambda: someone_else_waits_or_reader_passed(pid, seq),
                        f"holder {n}: no writer queued behind seq {seq} and the reader did not pass it")
            if reader.cursor >= seq:
                passed_while_held.append((seq, reader.cursor))
            else:
                holds_released_by_waiters += 1
            if commit:
                await tx.commit()
                held_committed.append(seq)
                expected[(text.upper(), OP_CREATE)] += 1
            else:
                await tx.rollback()
                held_rolled_back.append(seq)
                rolled_back_keys.append(text.upper())

    reading = asyncio.ensure_future(reader.follow(stop_reader))
    try:
        plain = [asyncio.ensure_future(plain_writer(n)) for n in range(11)]
        plain.append(asyncio.ensure_future(bulk_writer(11)))
        holders = [asyncio.ensure_future(holder(n, commit=n % 2 == 0)) for n in range(8)]
        assert len(plain) + len(holders) == 20
        try:
            await asyncio.wait_for(asyncio.gather(*holders), 30)
        finally:
            stop_plain.set()
            await asyncio.wait_for(asyncio.gather(*plain), 30)
        stop_reader.set()
        await asyncio.wait_for(reading, 10)
        await reader.drain()

        assert not passed_while_held, f"the reader passed uncommitted seqs (seq, cursor): {passed_while_held}"
        assert holds_released_by_waiters == 24  # every hold had a writer queued behind it

        rows = await monitor.fetch("SELECT seq, handle, op FROM changes WHERE seq > $1 ORDER BY seq", start)
        committed = [r["seq"] for r in rows]
        # every committed change seen exactly once, in ascending order, and nothing else
        assert len(reader.seen) == len(set(reader.seen))
        assert reader.seen == sorted(reader.seen)
        missed = sorted(set(committed) - set(reader.seen))
        assert not missed, f"committed changes the reader skipped: {missed}"
        assert reader.seen == committed
        assert collections.Counter((r["handle"], r["op"]) for r in rows) == expected
        assert set(held_committed) <= set(reader.seen)
        assert not set(held_rolled_back) & set(committed)
        assert await monitor.fetchval("SELECT count(*) FROM handles WHERE handle = ANY($1::text[])", rolled_back_keys) == 0
        assert reader.reads > 10  # the reader really was reading while the writers wrote
    finally:
        stop_plain.set()
        stop_reader.set()
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        for conn in conns:
            await conn.close()
        for pool in pools:
            await pool.close()
        await reader.conn.close()
        await monitor.close()
