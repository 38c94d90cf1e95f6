"""The PostgreSQL store (registry/store.py) against a real database: records, versions, listing,
homing, the change-log row every write leaves behind, and what a caller sees when the database goes."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import orjson
import pytest

from registry.pg import db
from registry.errors import ConcurrentUpdate, HandleAlreadyExists, HandleNotFound, IdresError, ServerUnavailable
from registry.model import PUBLIC_READ, TTL_ABSOLUTE, Handle, HandleValue, Record, ValueRef, prefix_record_handle
from registry.pg.store import OP_CREATE, OP_DELETE, OP_HOME, OP_UNHOME, OP_UPDATE, Store, prefix_change_key
from registry.value_json import render_values
from tests.db_state import snapshot
from tests.pgproxy import PgProxy

ADMIN_ONLY = 0x0C  # admin read + admin write, no public read


def value(index: int, data: str = "x", *, type: str = "URL", ttl: int = 86400, ttl_type: int = 0,
          permissions: int = 0x0E, timestamp: int = 1_700_000_000, references=()) -> HandleValue:
    return HandleValue(index, type, data.encode(), ttl, ttl_type, permissions, timestamp, tuple(references))


def record(text: str, *values: HandleValue) -> Record:
    return Record(Handle.parse(text), tuple(values) or (value(1, f"https://example.org/{text}"),))


class ChangeLog:
    """Reads the ``changes`` table after each write: the rows added since the last look."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.cursor = 0

    async def new(self) -> list[tuple[str, int]]:
        async with db.connection(self._dsn) as conn:
            rows = await conn.fetch("SELECT seq, handle, op FROM changes WHERE seq > $1 ORDER BY seq", self.cursor)
        seqs = [r["seq"] for r in rows]
        assert seqs == sorted(set(seqs)) and all(s > self.cursor for s in seqs)
        if seqs:
            self.cursor = seqs[-1]
        return [(r["handle"], r["op"]) for r in rows]


@pytest.fixture
async def log(dsn):
    return ChangeLog(dsn)


# --- create / get --------------------------------------------------------------------------------


async def test_create_then_get_returns_what_was_written(store, log):
    written = record(
        "88.101/Sn-0001",
        value(1, "https://example.org/p/1", ttl=300),
        value(2, "secret", type="HS_SECKEY", permissions=ADMIN_ONLY, ttl=60),
        value(3, "batch 7", type="BATCH", ttl=2_000_000_000, ttl_type=TTL_ABSOLUTE,
              references=[ValueRef(300, "88.101/ADMIN")]),
        value(4, "line 2", type="LINE", ttl=1_900_000_000, ttl_type=TTL_ABSOLUTE, permissions=PUBLIC_READ),
    )
    returned = await store.create(written)
    assert returned.version == 1

    got = await store.get("88.101/SN-0001")
    assert got is not None
    assert got.handle == "88.101/Sn-0001"  # the creator's spelling, found by the comparison key
    assert got.record == written
    assert got.version == 1
    assert got.min_ttl == 60  # smallest relative TTL, over public and private values
    assert got.expires_at == 1_900_000_000  # earliest absolute TTL
    public = orjson.loads(got.public_json)
    assert [v["index"] for v in public] == [1, 3, 4]  # index 2 is not public-read
    assert got.public_json == render_values([written.values[0], written.values[2], written.values[3]])
    assert public[0] == {"index": 1, "type": "URL", "data": {"format": "string", "value": "https://example.org/p/1"},
                         "ttl": 300, "timestamp": "2023-11-14T22:13:20Z"}
    assert b"secret" not in got.public_json
    assert got.vals == returned.vals and got.public_json == returned.public_json

    assert await store.get("88.101/SN-0002") is None
    assert await store.get("88.101/Sn-0001") is None  # get takes the comparison key, not a spelling
    assert await log.new() == [("88.101/SN-0001", OP_CREATE)]


@pytest.mark.parametrize(
    ("values", "min_ttl", "expires_at"),
    [
        ((value(1, ttl=500), value(2, ttl=40)), 40, None),
        ((value(1, ttl=1_800_000_000, ttl_type=TTL_ABSOLUTE),), 86400, 1_800_000_000),
        ((value(1, ttl=-5), value(2, ttl=30)), 0, None),  # a negative relative TTL counts as 0
        ((value(1, ttl=7, permissions=ADMIN_ONLY),), 7, None),  # private values bound the TTL too
    ],
)
async def test_ttl_bounds_are_stored(store, values, min_ttl, expires_at):
    await store.create(record("88.101/TTL", *values))
    got = await store.get("88.101/TTL")
    assert (got.min_ttl, got.expires_at) == (min_ttl, expires_at)


async def test_record_without_public_values_has_empty_public_json(store):
    await store.create(record("88.101/PRIVATE", value(1, "k", type="HS_SECKEY", permissions=ADMIN_ONLY)))
    got = await store.get("88.101/PRIVATE")
    assert got.public_json == b"[]" and not got.has_public_values
    assert got.record.values[0].data == b"k"


async def test_create_of_an_existing_handle_raises_and_writes_nothing(store, dsn, log):
    await store.create(record("88.101/DUP", value(1, "first")))
    await log.new()
    before = await snapshot(dsn)
    with pytest.raises(HandleAlreadyExists) as caught:
        await store.create(record("88.101/dup", value(1, "second")))  # same key, other spelling
    assert caught.value.handle == "88.101/dup"
    assert await snapshot(dsn) == before
    got = await store.get("88.101/DUP")
    assert (got.handle, got.record.values[0].data, got.version) == ("88.101/DUP", b"first", 1)
    assert await log.new() == []


# --- replace -------------------------------------------------------------------------------------


async def test_replace_with_the_current_version_bumps_it(store, log):
    await store.create(record("88.101/R", value(1, "v1")))
    replaced = await store.replace(record("88.101/R", value(1, "v2"), value(5, "extra", type="EMAIL")), 1)
    assert replaced.version == 2
    again = await store.replace(record("88.101/R", value(1, "v3", ttl=10)), 2)
    assert again.version == 3
    got = await store.get("88.101/R")
    assert got.version == 3
    assert got.record == record("88.101/R", value(1, "v3", ttl=10))
    assert got.min_ttl == 10
    assert [v["data"]["value"] for v in orjson.loads(got.public_json)] == ["v3"]
    assert await log.new() == [("88.101/R", OP_CREATE), ("88.101/R", OP_UPDATE), ("88.101/R", OP_UPDATE)]


async def test_replace_with_a_stale_version_raises_and_writes_nothing(store, dsn, log):
    await store.create(record("88.101/STALE", value(1, "v1")))
    await store.replace(record("88.101/STALE", value(1, "v2")), 1)
    await log.new()
    before = await snapshot(dsn)
    with pytest.raises(ConcurrentUpdate):
        await store.replace(record("88.101/STALE", value(1, "lost update")), 1)
    with pytest.raises(ConcurrentUpdate):
        await store.replace(record("88.101/STALE", value(1, "from the future")), 3)
    assert await snapshot(dsn) == before
    got = await store.get("88.101/STALE")
    assert (got.version, got.record.values[0].data) == (2, b"v2")
    assert await log.new() == []


async def test_replace_of_a_missing_handle_writes_nothing(store, dsn):
    before = await snapshot(dsn)
    with pytest.raises(ConcurrentUpdate):
        await store.replace(record("88.101/GHOST"), 1)
    assert await snapshot(dsn) == before


async def test_concurrent_replaces_from_one_version_let_exactly_one_win(store, log):
    await store.create(record("88.101/RACE", value(1, "v1")))
    results = await asyncio.gather(
        *(store.replace(record("88.101/RACE", value(1, f"writer {n}")), 1) for n in range(4)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1 and winners[0].version == 2
    assert all(isinstance(r, ConcurrentUpdate) for r in results if r is not winners[0])
    got = await store.get("88.101/RACE")
    assert got.version == 2 and got.record == winners[0].record
    assert await log.new() == [("88.101/RACE", OP_CREATE), ("88.101/RACE", OP_UPDATE)]


# --- delete --------------------------------------------------------------------------------------


async def test_delete_without_a_version(store, log):
    await store.create(record("88.101/Del"))
    await store.delete(Handle.parse("88.101/dEL"))
    assert await store.get("88.101/DEL") is None
    assert await log.new() == [("88.101/DEL", OP_CREATE), ("88.101/DEL", OP_DELETE)]


async def test_delete_with_the_current_version(store, log):
    await store.create(record("88.101/DELV"))
    await store.replace(record("88.101/DELV", value(1, "v2")), 1)
    await store.delete(Handle.parse("88.101/DELV"), expected_version=2)
    assert await store.get("88.101/DELV") is None
    assert await log.new() == [("88.101/DELV", OP_CREATE), ("88.101/DELV", OP_UPDATE), ("88.101/DELV", OP_DELETE)]


async def test_delete_with_a_stale_version_raises_and_writes_nothing(store, dsn, log):
    await store.create(record("88.101/DELS"))
    await store.replace(record("88.101/DELS", value(1, "v2")), 1)
    await log.new()
    before = await snapshot(dsn)
    with pytest.raises(ConcurrentUpdate):
        await store.delete(Handle.parse("88.101/DELS"), expected_version=1)
    assert await snapshot(dsn) == before
    assert (await store.get("88.101/DELS")).version == 2
    assert await log.new() == []


async def test_delete_of_a_missing_handle(store, dsn, log):
    await store.create(record("88.101/OTHER"))
    await log.new()
    before = await snapshot(dsn)
    with pytest.raises(HandleNotFound) as caught:
        await store.delete(Handle.parse("88.101/Missing"))
    assert caught.value.handle == "88.101/Missing"
    # With an expected version the store cannot tell "gone" from "changed": it reports a concurrent
    # update, and the registrar's retry then reads the record afresh and answers HandleNotFound.
    with pytest.raises(ConcurrentUpdate):
        await store.delete(Handle.parse("88.101/Missing"), expected_version=1)
    assert await snapshot(dsn) == before
    assert await log.new() == []


# --- reads of many -------------------------------------------------------------------------------


async def test_get_many(store):
    for name in ("A", "b", "C"):
        await store.create(record(f"88.101/{name}", value(1, name)))
    found = await store.get_many(["88.101/A", "88.101/B", "88.101/MISSING", "88.101/A"])
    assert set(found) == {"88.101/A", "88.101/B"}
    assert found["88.101/B"].handle == "88.101/b"
    assert found["88.101/B"].record.values[0].data == b"b"
    assert found["88.101/A"].version == 1
    assert await store.get_many([]) == {}


async def test_list_handles(store):
    spellings = ["88.101/c", "88.101/A", "88.101/b", "88.101/D-1", "88.101/d-0"]
    for text in spellings:
        await store.create(record(text))
    # Neighbouring prefixes: a longer one sharing the text, a shorter one, and another case.
    for text in ("88.1010/A", "88.10/A", "88.101.5/A", "88.1/X", "0.NA/88.101"):
        await store.create(record(text))

    total, handles = await store.list_handles("88.101")
    assert total == 5
    assert handles == ["88.101/A", "88.101/b", "88.101/c", "88.101/d-0", "88.101/D-1"]  # key order, as spelled
    assert await store.list_handles("88.101", limit=0) == (5, [])
    assert await store.list_handles("88.101", offset=0, limit=2) == (5, ["88.101/A", "88.101/b"])
    assert await store.list_handles("88.101", offset=2, limit=2) == (5, ["88.101/c", "88.101/d-0"])
    assert await store.list_handles("88.101", offset=4, limit=2) == (5, ["88.101/D-1"])
    assert await store.list_handles("88.101", offset=5, limit=2) == (5, [])
    assert await store.list_handles("88.101", offset=3) == (5, ["88.101/d-0", "88.101/D-1"])
    assert await store.list_handles("88.101.5") == (1, ["88.101.5/A"])
    assert await store.list_handles("0.na") == (1, ["0.NA/88.101"])
    assert await store.list_handles("88.102") == (0, [])
    assert await store.list_handles("88.102", limit=0) == (0, [])


async def test_list_handles_prefix_is_case_insensitive(store):
    await store.create(record("ab.Cd/x"))
    assert await store.list_handles("AB.cD") == (1, ["ab.Cd/x"])


# --- bulk_create ---------------------------------------------------------------------------------


async def test_bulk_create(store, dsn, log):
    records = [record(f"88.101/Bulk-{n:03d}", value(1, f"n{n}"), value(2, "k", type="HS_SECKEY", permissions=ADMIN_ONLY))
               for n in range(50)]
    assert await store.bulk_create(iter(records)) == 50
    total, handles = await store.list_handles("88.101")
    assert total == 50 and handles[0] == "88.101/Bulk-000"
    got = await store.get("88.101/BULK-017")
    assert got.record == records[17] and got.version == 1
    assert [v["index"] for v in orjson.loads(got.public_json)] == [1]
    assert await log.new() == [(f"88.101/BULK-{n:03d}", OP_CREATE) for n in range(50)]
    assert await store.bulk_create([]) == 0
    assert await log.new() == []


async def test_bulk_create_with_an_existing_handle_raises_a_registry_error_and_writes_nothing(store, dsn):
    await store.create(record("88.101/TAKEN"))
    before = await snapshot(dsn)
    batch = [record("88.101/NEW-1"), record("88.101/taken"), record("88.101/NEW-2")]
    try:
        await store.bulk_create(batch)
    except IdresError as exc:
        assert isinstance(exc, HandleAlreadyExists), exc
    except asyncpg.PostgresError as exc:  # the store promises never to let asyncpg types out
        pytest.fail(f"bulk_create leaked a driver error: {type(exc).__name__}: {exc}")
    else:
        pytest.fail("bulk_create accepted a handle that already exists")
    finally:
        assert await snapshot(dsn) == before


# --- home / unhome -------------------------------------------------------------------------------


async def test_home_and_unhome(store, dsn, log):
    prefix_record = record("0.NA/88.101", value(1, "site", type="HS_SITE"))
    assert await store.home("88.101", prefix_record) is True
    assert await store.homed_prefixes() == ["88.101"]
    got = await store.get("0.NA/88.101")
    assert got.record == prefix_record
    assert await log.new() == [("0.NA/88.101", OP_CREATE), (prefix_change_key("88.101"), OP_HOME)]
    assert prefix_change_key("88.101") == "0.NA/88.101"

    # Homing again changes nothing, even with a different prefix record.
    before = await snapshot(dsn)
    assert await store.home("88.101", record("0.NA/88.101", value(1, "other", type="HS_SITE"))) is False
    assert await store.home("88.101") is False
    assert await snapshot(dsn) == before
    assert await log.new() == []

    assert await store.unhome("88.101") is True
    assert await store.homed_prefixes() == []
    assert (await store.get("0.NA/88.101")).record == prefix_record  # its records stay
    assert await log.new() == [("0.NA/88.101", OP_UNHOME)]

    before = await snapshot(dsn)
    assert await store.unhome("88.101") is False
    assert await snapshot(dsn) == before
    assert await log.new() == []


async def test_home_keeps_an_existing_prefix_record(store, log):
    existing = record("0.NA/88.102", value(1, "existing", type="HS_SITE"))
    await store.create(existing)
    await log.new()
    assert await store.home("88.102", record("0.NA/88.102", value(1, "replacement", type="HS_SITE"))) is True
    got = await store.get("0.NA/88.102")
    assert got.record == existing and got.version == 1
    assert await log.new() == [("0.NA/88.102", OP_HOME)]


async def test_home_of_a_homed_prefix_creates_its_missing_record(store, log):
    assert await store.home("88.103") is True
    assert await log.new() == [("0.NA/88.103", OP_HOME)]
    assert await store.get("0.NA/88.103") is None
    late = record("0.NA/88.103", value(1, "late", type="HS_SITE"))
    assert await store.home("88.103", late) is False
    assert (await store.get("0.NA/88.103")).record == late
    assert await log.new() == [("0.NA/88.103", OP_CREATE)]


async def test_home_is_case_insensitive_and_keeps_the_spelling(store, log):
    assert await store.home("ab.Cd") is True
    assert await store.home("AB.CD") is False
    assert await store.homed_prefixes() == ["ab.Cd"]
    assert await store.unhome("aB.cD") is True
    assert await store.homed_prefixes() == []
    key = prefix_record_handle("ab.Cd").key
    assert await log.new() == [(key, OP_HOME), (key, OP_UNHOME)]


async def test_homed_prefixes_in_key_order(store):
    for prefix in ("88.2", "88.10", "88.1", "ZZ", "aa"):
        await store.home(prefix)
    assert await store.homed_prefixes() == ["88.1", "88.10", "88.2", "aa", "ZZ"]


async def test_ping(store):
    assert await store.ping() is True


# --- the database going away ---------------------------------------------------------------------


@pytest.fixture
async def proxy(dsn):
    running = await PgProxy(dsn).start()
    yield running
    await running.close()


async def _reads_and_writes_unavailable(store: Store) -> None:
    attempts = [
        lambda: store.get("88.101/A"),
        lambda: store.get_many(["88.101/A"]),
        lambda: store.list_handles("88.101"),
        lambda: store.homed_prefixes(),
        lambda: store.create(record("88.101/WHILE-DOWN")),
        lambda: store.replace(record("88.101/A", value(1, "while down")), 1),
        lambda: store.delete(Handle.parse("88.101/A")),
        lambda: store.bulk_create([record("88.101/BULK-DOWN")]),
        lambda: store.home("88.999"),
        lambda: store.unhome("88.101"),
        lambda: store.ping(),
    ]
    for attempt in attempts:
        with pytest.raises(ServerUnavailable) as caught:
            await attempt()
        assert "database is unavailable" in caught.value.message


async def test_a_store_whose_database_goes_away_raises_server_unavailable(proxy, dsn):
    pool = await db.create_pool(proxy.dsn, min_size=2, max_size=2, command_timeout=5)
    try:
        store = Store(pool)
        await store.create(record("88.101/A"))
        before = await snapshot(dsn)

        proxy.cut()  # the pool's open connections die, and new ones are refused
        await _reads_and_writes_unavailable(store)
        assert await snapshot(dsn) == before

        proxy.restore()
        deadline = time.monotonic() + 10
        while True:  # the pool replaces its broken connections once the database is back
            try:
                assert await store.ping()
                break
            except ServerUnavailable:
                assert time.monotonic() < deadline, "the store did not recover when the database came back"
        assert (await store.get("88.101/A")).version == 1
    finally:
        pool.terminate()


async def test_creating_a_pool_without_a_database_raises_server_unavailable(proxy):
    proxy.cut()
    with pytest.raises(ServerUnavailable):
        await db.create_pool(proxy.dsn, min_size=1, max_size=1)
    with pytest.raises(ServerUnavailable):
        await db.connect(proxy.dsn)


async def test_connection_cut_in_the_middle_of_a_write(proxy, dsn):
    """The database goes while a replace waits on a row lock: ServerUnavailable, and nothing commits."""
    direct = await db.create_pool(dsn, min_size=1, max_size=1)
    pool = await db.create_pool(proxy.dsn, min_size=1, max_size=1, command_timeout=5)
    holder = await db.connect(dsn)
    try:
        await Store(direct).create(record("88.101/LOCKED", value(1, "v1")))
        head = await direct.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
        proxied_pid = await pool.fetchval("SELECT pg_backend_pid()")

        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM handles WHERE handle = '88.101/LOCKED' FOR UPDATE")
        replace = asyncio.ensure_future(Store(pool).replace(record("88.101/LOCKED", value(1, "v2")), 1))
        await _until(lambda: _waiting_on_a_lock(direct, proxied_pid), "the replace never waited on the row lock")

        proxy.cut()
        with pytest.raises(ServerUnavailable):
            await asyncio.wait_for(replace, 10)
        await tx.rollback()  # the orphaned backend now gets the row, then finds its client gone
        await _until(lambda: _gone(direct, proxied_pid), "the cut backend never ended")

        got = await Store(direct).get("88.101/LOCKED")
        assert (got.version, got.record.values[0].data) == (1, b"v1")
        assert await direct.fetchval("SELECT coalesce(max(seq), 0) FROM changes") == head
    finally:
        await holder.close()
        pool.terminate()
        await direct.close()


async def _waiting_on_a_lock(pool: asyncpg.Pool, pid: int) -> bool:
    return await pool.fetchval("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)", pid)


async def _gone(pool: asyncpg.Pool, pid: int) -> bool:
    return not await pool.fetchval("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid)


async def _until(condition, message: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.01)  # poll interval
