"""Groups of writes (registry/pg/groups.py): rows locked, one log call; the change log stays in commit
order with no gap a reader could skip, as decision 3 of the design guide asks (see test_feed.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from registry.errors import ServerUnavailable
from registry.model import Handle, HandleValue, Record
from registry.pg import db, feed
from registry.pg.groups import RowWrite
from registry.pg.store import Store
from registry.records import StoredRecord

from tests.pgproxy import PgProxy

from .test_feed import Reader


def row(text: str, data: str = "x", existed: bool = False) -> RowWrite:
    record = Record(Handle.parse(text), (HandleValue(1, "URL", data.encode()),))
    return RowWrite(record.handle.key, record.handle.prefix_key, StoredRecord.from_record(record), existed)


async def test_a_group_locks_writes_and_logs_its_rows(store, dsn):
    async with store.group() as group:
        assert await group.lock(["88.101/A", "88.101/B"]) == {}
        seq = await group.write([row("88.101/A"), row("88.101/B")])
    async with store.group() as group:
        found = await group.lock(["88.101/A", "88.101/B", "88.101/C"])
        assert sorted(found) == ["88.101/A", "88.101/B"] and found["88.101/A"].version == 1
        last = await group.write([row("88.101/A", "v2", existed=True), RowWrite("88.101/B", "88.101", None, True)])
    async with db.connection(dsn) as conn:
        log = [(r["seq"], r["handle"], r["op"]) for r in await conn.fetch("SELECT seq, handle, op FROM changes ORDER BY seq")]
        assert [(h, op) for _, h, op in log] == [("88.101/A", 1), ("88.101/B", 1), ("88.101/A", 3), ("88.101/B", 2)]
        assert [s for s, _, _ in log] == list(range(seq - 1, last + 1))
        assert await conn.fetchval("SELECT version FROM handles WHERE handle = '88.101/A'") == 2


async def test_groups_keep_the_log_in_commit_order(dsn):
    """Group writers, and holders that keep a group open after logging it; a reader follows the log."""
    monitor = await db.create_pool(dsn, min_size=1, max_size=4)
    reader = Reader(await db.connect(dsn), await feed.head(monitor))
    stop = asyncio.Event()
    pools, passed, waited = [], [], 0

    async def writer(n: int) -> None:
        pool = await db.create_pool(dsn, min_size=1, max_size=1)
        pools.append(pool)
        for round in range(15):
            async with Store(pool).group() as group:
                await group.lock([f"88.101/G{n}-{round}-{i}" for i in range(3)])
                await group.write([row(f"88.101/G{n}-{round}-{i}") for i in range(3)])

    async def holder(n: int) -> None:
        nonlocal waited
        pool = await db.create_pool(dsn, min_size=1, max_size=1)
        pools.append(pool)
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
        for round in range(2):
            async with Store(pool).group() as group:
                seq = await group.write([row(f"88.101/H{n}-{round}")])
                deadline = time.monotonic() + 10
                while reader.cursor < seq and not await monitor.fetchval(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND pid <> $1)", pid):
                    assert time.monotonic() < deadline, "nobody queued behind the held seq"
                    await asyncio.sleep(0.002)
                if reader.cursor >= seq:
                    passed.append(seq)
                else:
                    waited += 1

    reading = asyncio.ensure_future(reader.follow(stop))
    try:
        await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(6)), *(holder(n) for n in range(3))), 60)
        stop.set()
        await asyncio.wait_for(reading, 10)
        await reader.drain()
        committed = [r["seq"] for r in await monitor.fetch("SELECT seq FROM changes ORDER BY seq")]
        assert not passed, f"the reader passed seqs still uncommitted: {passed}"
        assert waited == 6
        assert reader.seen == committed  # every committed change seen, once, in order
        assert len(committed) == 6 * 15 * 3 + 3 * 2
    finally:
        stop.set()
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        for pool in pools:
            await pool.close()
        await reader.conn.close()
        await monitor.close()


async def test_a_commit_whose_connection_is_lost_says_the_write_may_have_been_applied(dsn):
    proxy = await PgProxy(dsn).start()
    pool = await db.create_pool(proxy.dsn, min_size=1, max_size=2)
    try:
        with pytest.raises(ServerUnavailable) as caught:
            async with Store(pool).group() as group:
                await group.lock(["88.101/DOUBT"])
                await group.write([row("88.101/DOUBT")])
                proxy.cut()
        assert "may have been applied" in caught.value.message and caught.value.cause.startswith("commit in doubt")
        with pytest.raises(ServerUnavailable) as earlier:  # a connection lost before the commit: plainly refused
            async with Store(pool).group() as group:
                await group.lock(["88.101/LOST"])
        assert earlier.value.message == db.UNAVAILABLE_MESSAGE
    finally:
        pool.terminate()
        await proxy.close()
    async with db.connection(dsn) as conn:  # the commit never reached the server
        assert await conn.fetchval("SELECT count(*) FROM handles WHERE handle = '88.101/DOUBT'") == 0
