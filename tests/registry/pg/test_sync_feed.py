"""The change feed other nodes follow (registry/pg/feed.py): pages with their records as stored, prefix
filters that still move the cursor, the retention horizon and pruning, and consistent snapshots."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from registry.errors import SnapshotNeeded
from registry.model import Handle, HandleValue, Record
from registry.pg import db, feed
from registry.pg.feed import in_scope
from registry.pg.store import OP_CREATE, OP_DELETE, OP_HOME, OP_UPDATE


async def seqs_after(conn, start: int) -> list[int]:
    return [r["seq"] for r in await conn.fetch("SELECT seq FROM changes WHERE seq > $1 ORDER BY seq", start)]


def record(text: str, data: str = "x") -> Record:
    return Record(Handle.parse(text), (HandleValue(1, "URL", data.encode(), timestamp=1),))


@pytest.mark.parametrize(("key", "prefixes", "inside"), [
    ("88.101/X", ("88.101",), True),
    ("0.NA/88.101", ("88.101",), True),
    ("0.NA/88.101.5", ("88.101",), True),
    ("88.101.5/X", ("88.101",), False),
    ("0.NA/88.1011", ("88.101",), False),
    ("0.NA/88", ("88.101",), False),
    ("88.102/X", ("88.101", "88.102"), True),
    ("77/X", (), True),
])
def test_which_changes_belong_to_a_prefix(key, prefixes, inside):
    assert in_scope(key, prefixes) is inside


async def test_a_page_carries_each_change_with_its_record_exactly_as_stored(store, dsn):
    async with db.connection(dsn) as conn:
        start = await feed.head(conn)
        await store.create(record("88.101/A", "one"))
        await store.replace(record("88.101/A", "two"), 1)
        await store.create(record("88.102/B"))
        await store.create(record("88.101/C"))
        await store.delete(Handle.parse("88.101/C"))
        await store.home("88.101")
        page = await feed.page(conn, start, 100, ("88.101",))
        stored = await conn.fetchrow("SELECT spelled, vals, public_json FROM handles WHERE handle = '88.101/A'")
    assert [(e.key, e.op) for e in page.entries] == [
        ("88.101/A", OP_CREATE), ("88.101/A", OP_UPDATE), ("88.101/C", OP_CREATE), ("88.101/C", OP_DELETE), ("0.NA/88.101", OP_HOME)]
    first, second = page.entries[0].record, page.entries[1].record
    assert first == second and (first.spelled, first.vals, first.public_json) == tuple(stored)  # as the feed is read: the newest
    assert page.entries[2].record is None and page.entries[3].record is None  # C is gone by now
    assert page.entries[4].record is None  # a home names no record
    assert (page.next_cursor, page.more, page.head) == (page.entries[-1].seq, False, page.entries[-1].seq)


async def test_a_quiet_prefix_still_moves_its_cursor_on(store, dsn):
    async with db.connection(dsn) as conn:
        start = await feed.head(conn)
        for n in range(30):
            await store.create(record(f"88.102/N{n}"))
        seqs = await seqs_after(conn, start)
        page = await feed.page(conn, start, 5, ("88.101",), scan=10)
        assert (page.entries, page.next_cursor, page.more) == ([], seqs[9], True)
        page = await feed.page(conn, seqs[9], 5, ("88.101",), scan=100)
        assert (page.entries, page.next_cursor, page.more) == ([], seqs[-1], False)
        limited = await feed.page(conn, start, 5, ("88.102",))
        assert [e.seq for e in limited.entries] == seqs[:5] and limited.more


async def test_pruning_moves_the_horizon_and_an_older_cursor_needs_a_snapshot(store, dsn):
    async with db.connection(dsn) as conn:
        start = await feed.head(conn)
        for n in range(12):
            await store.create(record(f"88.101/P{n}"))
        seqs = await seqs_after(conn, start)
        assert await feed.prune(conn, datetime.now(timezone.utc) - timedelta(hours=1), 100) == 0  # none old enough
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        assert await feed.prune(conn, later, 5) == 5  # bounded batches
        assert await feed.horizon(conn) == seqs[4]
        assert await feed.prune(conn, later, 100) == 6  # never the newest change: the head stays known
        assert (await feed.horizon(conn), await feed.head(conn)) == (seqs[10], seqs[11])
        with pytest.raises(SnapshotNeeded, match="older than this node's change-log horizon") as caught:
            await feed.page(conn, seqs[9], 10)
        assert caught.value.http_status == 410
        page = await feed.page(conn, seqs[10], 10)  # at the horizon: nothing was missed
        assert [e.key for e in page.entries] == ["88.101/P11"]
        with pytest.raises(SnapshotNeeded, match="ahead of this node's change log"):
            await feed.page(conn, seqs[11] + 1, 10)


async def test_a_snapshot_is_one_consistent_read_and_its_cursor_continues_the_feed(store, dsn):
    for n in range(5):
        await store.create(record(f"88.101/S{n}"))
    await store.create(record("88.102/OTHER"))
    await store.home("88.101", record("0.NA/88.101"))
    await store.create(record("0.NA/88.101.5"))
    async with db.connection(dsn) as conn, feed.snapshot(conn) as snapshot:
        await store.create(record("88.101/LATE"))  # committed while the snapshot is read: not in it, after its cursor
        await store.delete(Handle.parse("88.101/S0"))
        keys = [row.key async for rows in snapshot.records("88.101", batch=2) for row in rows]
        cursor = snapshot.cursor
    assert keys[:2] == ["0.NA/88.101", "0.NA/88.101.5"] and sorted(keys[2:]) == [f"88.101/S{n}" for n in range(5)]
    async with db.connection(dsn) as conn:
        page = await feed.page(conn, cursor, 10, ("88.101",))
    assert [(e.key, e.op) for e in page.entries] == [("88.101/LATE", OP_CREATE), ("88.101/S0", OP_DELETE)]


async def test_concurrent_writers_appear_in_the_feed_once_each_in_seq_order(store, dsn):
    async with db.connection(dsn) as conn:
        start = await feed.head(conn)

        async def writer(w: int) -> None:
            for n in range(10):
                await store.create(record(f"88.101/W{w}-{n}"))

        await asyncio.gather(*(writer(w) for w in range(16)))
        seen, cursor, more = [], start, True
        while more:
            page = await feed.page(conn, cursor, 7, ("88.101",))
            seen += [e.seq for e in page.entries]
            cursor, more = page.next_cursor, page.more
        assert seen == await seqs_after(conn, start) and len(seen) == 160


async def test_the_pruner_deletes_what_is_past_the_retention_in_batches(store, dsn):
    import time

    from resolver.replication.retention import ChangeLogPruner

    for n in range(7):
        await store.create(record(f"88.101/R{n}"))
    pool = await db.create_pool(dsn, max_size=2)
    try:
        now = ChangeLogPruner(pool, retention=3600, batch=2, interval=60)
        assert await now.tick() == 0  # nothing is an hour old
        later = ChangeLogPruner(pool, retention=3600, batch=2, interval=60, clock=lambda: time.time() + 7200)
        assert await later.tick() == 6 and later.pruned == 6
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM changes") == 1
            assert await feed.horizon(conn) == await feed.head(conn) - 1
    finally:
        await pool.close()
