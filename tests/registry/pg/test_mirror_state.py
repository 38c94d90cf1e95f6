"""Mirror state in the store (registry/pg/mirrors.py): adding and removing mirrors, and applying snapshot
chunks and feed pages each in one transaction with the mirror's progress."""

from __future__ import annotations

import pytest

from registry.errors import ConcurrentUpdate, IdresError
from registry.model import Handle, HandleValue, Record
from registry.pg import db, feed, mirrors
from registry.pg.feed import RecordRow
from registry.pg.mirrors import Batch, MirrorGone
from registry.pg.store import OP_CREATE, OP_DELETE, OP_HOME, OP_UNHOME, OP_UPDATE
from registry.records import StoredRecord


def row(text: str, data: str = "x") -> RecordRow:
    stored = StoredRecord.from_record(Record(Handle.parse(text), (HandleValue(1, "URL", data.encode(), timestamp=1),)))
    key = Handle.parse(text).key
    return RecordRow(key, text, stored.vals, stored.public_json, stored.min_ttl, stored.expires_at, stored.sig_expires)


def owns(key: str) -> bool:
    return key.startswith("88.101/") or key == "0.NA/88.101"


async def log_after(conn, seq: int) -> list[tuple[str, int]]:
    return [(r["handle"], r["op"]) for r in await conn.fetch("SELECT handle, op FROM changes WHERE seq > $1 ORDER BY seq", seq)]


async def held(conn) -> dict[str, bytes]:
    return {r["handle"]: bytes(r["vals"]) for r in await conn.fetch("SELECT handle, vals FROM handles")}


async def test_adding_and_removing_a_mirror_is_logged_like_homing(store, dsn):
    async with db.connection(dsn) as conn:
        start = await feed.head(conn)
        await mirrors.add(conn, "88.101", "http://origin:8000", username="300:88.101/ADMIN", secret="s", trust_root=b"pem")
        assert await store.mirrored_prefixes() == {"88.101": "http://origin:8000"}
        with pytest.raises(IdresError, match="mirrored from http://origin:8000 already"):
            await mirrors.add(conn, "88.101", "http://elsewhere")
        await store.home("88.102")
        with pytest.raises(IdresError, match="homed here"):
            await mirrors.add(conn, "88.102", "http://origin:8000")
        mirror = await mirrors.get(conn, "88.101")
        assert (mirror.state, mirror.cursor, mirror.username, mirror.secret, mirror.trust_root) == ("new", None, "300:88.101/ADMIN", "s", b"pem")
        assert await mirrors.remove(conn, "88.101") and not await mirrors.remove(conn, "88.101")
        assert await log_after(conn, start) == [("0.NA/88.101", OP_HOME), ("0.NA/88.102", OP_HOME), ("0.NA/88.101", OP_UNHOME)]


async def test_a_snapshot_replacing_what_is_held_deletes_what_it_did_not_bring(dsn):
    async with db.connection(dsn) as conn:
        await mirrors.add(conn, "88.101", "http://origin")
        assert await mirrors.begin_snapshot(conn, "88.101", owns)  # nothing held: records are simply inserted
        assert await mirrors.apply_chunk(conn, "88.101", [row("88.101/A"), row("88.101/B")], fresh=True) == 2
        await mirrors.finish_snapshot(conn, "88.101", 7, replaced=False, owns=owns)
        mirror = await mirrors.get(conn, "88.101")
        assert (mirror.state, mirror.cursor, mirror.records, mirror.snapshots) == ("following", 7, 2, 1)

        start = await feed.head(conn)
        assert not await mirrors.begin_snapshot(conn, "88.101", owns)  # a resync: keys are tracked
        assert (await mirrors.get(conn, "88.101")).cursor is None
        await mirrors.apply_chunk(conn, "88.101", [row("88.101/B", "new"), row("88.101/C")], fresh=False, rejected=2, kept=["88.101/A"])
        await mirrors.apply_chunk(conn, "88.101", [row("0.NA/88.101")], fresh=False)
        await mirrors.apply_chunk(conn, "88.101", [row("88.101/Z")], fresh=False)
        await mirrors.finish_snapshot(conn, "88.101", 15, replaced=True, owns=owns)  # A: refused, the copy held stays
        assert set(await held(conn)) == {"88.101/A", "88.101/B", "88.101/C", "88.101/Z", "0.NA/88.101"}

        assert not await mirrors.begin_snapshot(conn, "88.101", owns)
        await mirrors.apply_chunk(conn, "88.101", [row("88.101/B", "new"), row("88.101/C"), row("0.NA/88.101")], fresh=False)
        assert await mirrors.finish_snapshot(conn, "88.101", 20, replaced=True, owns=owns) == 2
        assert await held(conn) == {k: r.vals for k, r in
                                    (("88.101/B", row("88.101/B", "new")), ("88.101/C", row("88.101/C")), ("0.NA/88.101", row("0.NA/88.101")))}
        logged = await log_after(conn, start)
        assert logged[:4] == [("88.101/C", OP_CREATE), ("88.101/B", OP_UPDATE), ("0.NA/88.101", OP_CREATE), ("88.101/Z", OP_CREATE)]
        assert sorted(logged[4:]) == [("88.101/A", OP_DELETE), ("88.101/Z", OP_DELETE)]
        mirror = await mirrors.get(conn, "88.101")
        assert (mirror.cursor, mirror.records, mirror.rejected, mirror.snapshots) == (20, 3, 2, 3)
        assert await conn.fetchval("SELECT count(*) FROM mirror_seen") == 0


async def test_a_feed_page_is_applied_once_with_its_cursor(dsn):
    async with db.connection(dsn) as conn:
        await mirrors.add(conn, "88.101", "http://origin")
        await mirrors.begin_snapshot(conn, "88.101", owns)
        await mirrors.apply_chunk(conn, "88.101", [row("88.101/A")], fresh=True)
        await mirrors.finish_snapshot(conn, "88.101", 10, replaced=False, owns=owns)
        start = await feed.head(conn)
        page = Batch({"88.101/B": row("88.101/B")}, ["88.101/A"], [("88.101/B", False), ("88.101/A", True), ("88.101/B", False)],
                     next_cursor=14, head=15, rejected=0, caught_up=False)
        await mirrors.apply_batch(conn, "88.101", 10, page)
        with pytest.raises(ConcurrentUpdate, match="another process applied it"):
            await mirrors.apply_batch(conn, "88.101", 10, page)  # never twice
        assert set(await held(conn)) == {"88.101/B"}
        assert await log_after(conn, start) == [("88.101/B", OP_CREATE), ("88.101/A", OP_DELETE), ("88.101/B", OP_UPDATE)]
        mirror = await mirrors.get(conn, "88.101")
        assert (mirror.cursor, mirror.origin_head, mirror.records, mirror.applied) == (14, 15, 1, 3)
        await mirrors.remove(conn, "88.101")
        with pytest.raises(MirrorGone):
            await mirrors.apply_batch(conn, "88.101", 14, page)
        with pytest.raises(MirrorGone):
            await mirrors.apply_chunk(conn, "88.101", [row("88.101/Z")], fresh=False)
        assert "88.101/Z" not in await held(conn)  # the whole transaction is gone


async def test_leases_are_distinct_per_prefix_and_case_blind():
    assert mirrors.lease_key("88.AbC") == mirrors.lease_key("88.abc") != mirrors.lease_key("88.101")
