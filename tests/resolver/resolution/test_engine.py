"""Unit tests of resolver.engine: the cache in front of a record source, authority, invalidation.

The record source is a fake at the engine's edge (counting calls, optionally gated by an event) and
both clocks are fakes, so every expiry is exact and every interleaving is forced, never slept for.
"""

from __future__ import annotations

import asyncio

import pytest

from registry.errors import PrefixNotHomed
from registry.model import TTL_ABSOLUTE, Handle, HandleValue, Record
from registry.records import StoredRecord
from resolver.resolution.cache import TtlPolicy
from resolver.core.authority import AuthoritySnapshot, CurrentAuthority
from resolver.resolution.engine import NOT_FOUND, CachedRecord, Engine

WALL = 1_700_000_000
PREFIX = "88.101"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeSource:
    """A record source keyed by comparison key.

    ``get`` takes its answer when it is called (like a read's snapshot), then waits for ``gate`` if
    one is set, so a test can hold a load in flight and change the records meanwhile.
    """

    def __init__(self, *records: StoredRecord) -> None:
        self.records: dict[str, StoredRecord] = {}
        for stored in records:
            self.put(stored)
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.on_return = None  # called with the key just before get returns

    def put(self, stored: StoredRecord) -> None:
        self.records[Handle.parse(stored.handle).key] = stored

    def delete(self, handle: str) -> None:
        del self.records[Handle.parse(handle).key]

    async def get(self, key: str) -> StoredRecord | None:
        self.calls.append(key)
        answer = self.records.get(key)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.on_return is not None:
            self.on_return(key)
        return answer


async def within(awaitable, timeout: float = 5.0):
    """Await with a deadline, so a broken interleaving fails the test instead of hanging it."""
    return await asyncio.wait_for(awaitable, timeout)


def stored(handle: str, *values: HandleValue, version: int = 1) -> StoredRecord:
    if not values:
        values = (HandleValue(1, "URL", b"https://example.org/" + handle.encode(), ttl=300),)
    return StoredRecord.from_record(Record(Handle.parse(handle), values), version=version)


def url(index: int, ttl: int, ttl_type: int = 0) -> HandleValue:
    return HandleValue(index, "URL", b"https://example.org/%d" % index, ttl=ttl, ttl_type=ttl_type)


def make_engine(*records: StoredRecord, prefixes=(PREFIX,), **kwargs) -> tuple[Engine, FakeSource, FakeClock]:
    source = FakeSource(*records)
    clock = FakeClock(5000.0)
    kwargs.setdefault("wall_clock", FakeClock(WALL))
    engine = Engine(source, CurrentAuthority(AuthoritySnapshot(prefixes)), clock=clock, **kwargs)
    return engine, source, clock


def h(text: str) -> Handle:
    return Handle.parse(text)


async def started(engine: Engine, source: FakeSource, handle: Handle) -> asyncio.Task:
    """A resolve task, returned once its load is inside ``source.get``."""
    source.entered.clear()
    task = asyncio.create_task(engine.resolve(handle))
    await within(source.entered.wait())
    return task


# ------------------------------------------------------------------------------------------------ hits


async def test_miss_loads_from_the_source_and_returns_the_record():
    record = stored("88.101/SN-1")
    engine, source, _ = make_engine(record)
    entry = await engine.resolve(h("88.101/SN-1"))
    assert isinstance(entry, CachedRecord)
    assert entry.stored is record
    assert source.calls == ["88.101/SN-1"]


async def test_hit_performs_no_source_call():
    record = stored("88.101/SN-1")
    engine, source, _ = make_engine(record)
    first = await engine.resolve(h("88.101/SN-1"))
    second = await engine.resolve(h("88.101/SN-1"))
    assert len(source.calls) == 1
    assert second is first
    assert engine.lookup(h("88.101/SN-1").key) is first


async def test_hit_is_case_insensitive():
    record = stored("88.101/SN-1")
    engine, source, _ = make_engine(record)
    await engine.resolve(h("88.101/sn-1"))
    entry = await engine.resolve(h("88.101/Sn-1"))
    assert entry is not None and entry.stored is record
    assert len(source.calls) == 1


async def test_lookup_of_an_unknown_key_is_none_and_calls_nothing():
    engine, source, _ = make_engine()
    assert engine.lookup("88.101/NOPE") is None
    assert source.calls == []


# ------------------------------------------------------------------------------------------- negatives


async def test_negative_answer_is_cached_for_the_negative_ttl_then_expires():
    engine, source, clock = make_engine(policy=TtlPolicy(negative_ttl=30))
    start = clock.now
    assert await engine.resolve(h("88.101/NOPE")) is None
    assert engine.lookup("88.101/NOPE") is NOT_FOUND
    clock.now = start + 29.999
    assert await engine.resolve(h("88.101/NOPE")) is None
    assert len(source.calls) == 1
    clock.now = start + 30
    assert engine.lookup("88.101/NOPE") is None
    source.put(stored("88.101/NOPE"))
    entry = await engine.resolve(h("88.101/NOPE"))
    assert entry is not None and entry.stored.handle == "88.101/NOPE"
    assert len(source.calls) == 2


async def test_negative_ttl_is_capped_by_max_ttl():
    engine, source, clock = make_engine(policy=TtlPolicy(max_ttl=10, negative_ttl=60))
    start = clock.now
    await engine.resolve(h("88.101/NOPE"))
    clock.now = start + 9.5
    assert engine.lookup("88.101/NOPE") is NOT_FOUND
    clock.now = start + 10
    assert engine.lookup("88.101/NOPE") is None


async def test_negative_entries_have_their_own_cap():
    engine, source, _ = make_engine(negative_max_entries=2)
    for name in ("A", "B", "C"):
        await engine.resolve(h(f"88.101/{name}"))
    assert engine.lookup("88.101/A") is None
    assert engine.lookup("88.101/B") is NOT_FOUND
    assert engine.lookup("88.101/C") is NOT_FOUND
    assert engine.stats()["negative_entries"] == 2
    assert engine.stats()["evictions"] == 1


async def test_a_write_after_a_negative_answer_is_seen_after_invalidate():
    engine, source, _ = make_engine()
    assert await engine.resolve(h("88.101/NEW")) is None
    source.put(stored("88.101/NEW"))
    engine.invalidate(h("88.101/NEW").key)
    entry = await engine.resolve(h("88.101/NEW"))
    assert entry is not None
    assert len(source.calls) == 2


# ------------------------------------------------------------------------------------------- positive TTL


async def test_an_expired_entry_is_kept_for_serving_stale_but_never_a_hit():
    record = stored("88.101/SN-1", url(1, 40))
    engine, source, clock = make_engine(record, keep_expired=600)
    start = clock.now
    entry = await engine.resolve(h("88.101/SN-1"))
    assert engine.expired("88.101/SN-1") is None  # fresh
    clock.now = start + 100
    assert engine.lookup("88.101/SN-1") is None
    assert engine.expired("88.101/SN-1") == (entry, 60)
    await engine.resolve(h("88.101/SN-1"))  # a miss: loaded again
    assert len(source.calls) == 2 and engine.expired("88.101/SN-1") is None
    engine.invalidate("88.101/SN-1")
    clock.now = start + 1000
    assert engine.expired("88.101/SN-1") is None  # an invalidated entry is not kept


async def test_positive_entry_expires_after_the_smallest_value_ttl():
    record = stored("88.101/SN-1", url(1, 300), url(2, 40), url(3, 1000))
    engine, source, clock = make_engine(record)
    start = clock.now
    await engine.resolve(h("88.101/SN-1"))
    clock.now = start + 39.999
    assert isinstance(engine.lookup("88.101/SN-1"), CachedRecord)
    clock.now = start + 40
    assert engine.lookup("88.101/SN-1") is None
    await engine.resolve(h("88.101/SN-1"))
    assert len(source.calls) == 2


async def test_absolute_ttl_counts_from_the_wall_clock():
    record = stored("88.101/SN-1", url(1, 300), url(2, WALL + 25, TTL_ABSOLUTE))
    engine, source, clock = make_engine(record)
    start = clock.now
    await engine.resolve(h("88.101/SN-1"))
    clock.now = start + 24.5
    assert isinstance(engine.lookup("88.101/SN-1"), CachedRecord)
    clock.now = start + 25
    assert engine.lookup("88.101/SN-1") is None


async def test_absolute_ttl_larger_than_relative_one_does_not_extend_it():
    record = stored("88.101/SN-1", url(1, 20), url(2, WALL + 500, TTL_ABSOLUTE))
    engine, source, clock = make_engine(record)
    start = clock.now
    await engine.resolve(h("88.101/SN-1"))
    clock.now = start + 20
    assert engine.lookup("88.101/SN-1") is None


async def test_absolute_ttl_in_the_past_is_answered_but_not_cached():
    record = stored("88.101/SN-1", url(1, 300), url(2, WALL - 10, TTL_ABSOLUTE))
    engine, source, _ = make_engine(record)
    entry = await engine.resolve(h("88.101/SN-1"))
    assert entry is not None and entry.stored is record
    assert engine.lookup("88.101/SN-1") is None
    await engine.resolve(h("88.101/SN-1"))
    assert len(source.calls) == 2


async def test_max_ttl_clamps_positive_entries():
    record = stored("88.101/SN-1", url(1, 86400))
    engine, source, clock = make_engine(record, policy=TtlPolicy(max_ttl=60))
    start = clock.now
    await engine.resolve(h("88.101/SN-1"))
    clock.now = start + 59.9
    assert engine.lookup("88.101/SN-1") is not None
    clock.now = start + 60
    assert engine.lookup("88.101/SN-1") is None


async def test_min_ttl_raises_short_positive_ttls():
    record = stored("88.101/SN-1", url(1, 5))
    engine, source, clock = make_engine(record, policy=TtlPolicy(min_ttl=30))
    start = clock.now
    await engine.resolve(h("88.101/SN-1"))
    clock.now = start + 29
    assert engine.lookup("88.101/SN-1") is not None
    clock.now = start + 30
    assert engine.lookup("88.101/SN-1") is None


async def test_zero_ttl_record_is_not_cached():
    record = stored("88.101/SN-1", url(1, 0))
    engine, source, _ = make_engine(record)
    assert await engine.resolve(h("88.101/SN-1")) is not None
    assert engine.lookup("88.101/SN-1") is None
    await engine.resolve(h("88.101/SN-1"))
    assert len(source.calls) == 2


async def test_record_larger_than_max_bytes_is_answered_but_not_cached():
    record = stored("88.101/SN-1")
    engine, source, _ = make_engine(record, max_bytes=record.size - 1)
    assert (await engine.resolve(h("88.101/SN-1"))).stored is record
    assert engine.lookup("88.101/SN-1") is None
    assert engine.stats()["bytes"] == 0


async def test_positive_cap_evicts_least_recently_used():
    records = [stored(f"88.101/{name}") for name in "ABC"]
    engine, source, _ = make_engine(*records, max_entries=2)
    await engine.resolve(h("88.101/A"))
    await engine.resolve(h("88.101/B"))
    assert engine.lookup("88.101/A") is not None  # A is now more recent than B
    await engine.resolve(h("88.101/C"))
    assert engine.lookup("88.101/B") is None
    assert engine.lookup("88.101/A") is not None
    assert engine.lookup("88.101/C") is not None
    assert engine.stats()["evictions"] == 1


# ------------------------------------------------------------------------------------------- authority


async def test_resolve_of_a_prefix_not_homed_raises_and_calls_nothing():
    engine, source, _ = make_engine(stored("88.102/X"))
    with pytest.raises(PrefixNotHomed) as info:
        await engine.resolve(h("88.102/X"))
    assert info.value.handle == "88.102/X"
    assert source.calls == []
    assert engine.stats()["misses"] == 0


async def test_a_homed_parent_does_not_cover_handles_under_a_derived_prefix():
    engine, source, _ = make_engine()
    with pytest.raises(PrefixNotHomed):
        await engine.resolve(h("88.101.5/SN-1"))
    assert source.calls == []


async def test_homed_prefix_match_is_case_insensitive():
    record = stored("88.ABC/X")
    engine, source, _ = make_engine(record, prefixes=("88.abc",))
    entry = await engine.resolve(h("88.Abc/x"))
    assert entry is not None and entry.stored is record


async def test_resolve_of_a_prefix_record_under_a_homed_parent_loads_it():
    record = stored("0.NA/88.101.5")
    engine, source, _ = make_engine(record)
    entry = await engine.resolve(h("0.NA/88.101.5"))
    assert entry is not None and entry.stored is record
    with pytest.raises(PrefixNotHomed):
        await engine.resolve(h("0.NA/88"))
    assert source.calls == ["0.NA/88.101.5"]


# ------------------------------------------------------------------------------------------- single flight


async def test_concurrent_resolves_of_one_key_make_one_source_call():
    record = stored("88.101/SN-1")
    engine, source, _ = make_engine(record)
    source.gate = asyncio.Event()
    tasks = [asyncio.create_task(engine.resolve(h("88.101/sn-1"))) for _ in range(5)]
    await within(source.entered.wait())  # every task reached the flight before the load's first step
    source.gate.set()
    entries = await within(asyncio.gather(*tasks))
    assert len(source.calls) == 1
    assert all(entry is not None and entry.stored is record for entry in entries)
    assert engine.lookup("88.101/SN-1") is not None


async def test_concurrent_resolves_of_different_keys_load_each():
    engine, source, _ = make_engine(stored("88.101/A"), stored("88.101/B"))
    source.gate = asyncio.Event()
    a = asyncio.create_task(engine.resolve(h("88.101/A")))
    b = asyncio.create_task(engine.resolve(h("88.101/B")))
    await within(source.entered.wait())
    source.gate.set()
    await within(asyncio.gather(a, b))
    assert sorted(source.calls) == ["88.101/A", "88.101/B"]


async def test_a_failing_source_raises_to_every_waiter_and_caches_nothing():
    class Down(Exception):
        pass

    engine, source, _ = make_engine(stored("88.101/SN-1"))
    source.gate = asyncio.Event()

    def fail(_key):
        raise Down()

    source.on_return = fail
    tasks = [asyncio.create_task(engine.resolve(h("88.101/SN-1"))) for _ in range(3)]
    await within(source.entered.wait())
    source.gate.set()
    outcomes = await within(asyncio.gather(*tasks, return_exceptions=True))
    assert all(isinstance(o, Down) for o in outcomes)
    assert len(source.calls) == 1
    assert engine.lookup("88.101/SN-1") is None
    source.on_return = None
    source.gate = None
    assert await engine.resolve(h("88.101/SN-1")) is not None
    assert len(source.calls) == 2


# ------------------------------------------------------------------------------------------- invalidation


async def test_invalidate_drops_a_positive_entry():
    engine, source, _ = make_engine(stored("88.101/SN-1"))
    await engine.resolve(h("88.101/SN-1"))
    source.put(stored("88.101/SN-1", version=2))
    engine.invalidate("88.101/SN-1")
    assert engine.lookup("88.101/SN-1") is None
    entry = await engine.resolve(h("88.101/SN-1"))
    assert entry.stored.version == 2
    assert len(source.calls) == 2


async def test_invalidate_drops_a_negative_entry():
    engine, source, _ = make_engine()
    await engine.resolve(h("88.101/SN-1"))
    engine.invalidate("88.101/SN-1")
    assert engine.lookup("88.101/SN-1") is None
    assert engine.stats()["negative_entries"] == 0


async def test_invalidate_all_empties_both_caches():
    engine, source, _ = make_engine(stored("88.101/A"))
    await engine.resolve(h("88.101/A"))
    await engine.resolve(h("88.101/NOPE"))
    engine.invalidate_all()
    stats = engine.stats()
    assert (stats["entries"], stats["negative_entries"], stats["bytes"]) == (0, 0, 0)


async def test_load_started_before_invalidate_is_not_cached_after_it():
    """The invalidation race: a read that began before a write must not outlive the write's invalidation."""
    engine, source, _ = make_engine(stored("88.101/SN-1", version=1))
    source.gate = asyncio.Event()
    before = await started(engine, source, h("88.101/SN-1"))
    # the write lands and its invalidation arrives while the old read is in flight
    source.put(stored("88.101/SN-1", version=2))
    engine.invalidate("88.101/SN-1")
    source.gate.set()
    entry = await within(before)
    assert entry is not None and entry.stored.version == 1  # the waiting request still gets its answer
    assert engine.lookup("88.101/SN-1") is None
    source.gate = None
    after = await engine.resolve(h("88.101/SN-1"))
    assert after.stored.version == 2
    assert len(source.calls) == 2


async def test_resolve_after_invalidate_does_not_join_the_stale_load():
    engine, source, _ = make_engine(stored("88.101/SN-1", version=1))
    source.gate = asyncio.Event()
    old = await started(engine, source, h("88.101/SN-1"))
    source.put(stored("88.101/SN-1", version=2))
    engine.invalidate("88.101/SN-1")
    new = await started(engine, source, h("88.101/SN-1"))
    assert len(source.calls) == 2
    source.gate.set()
    assert (await within(old)).stored.version == 1
    assert (await within(new)).stored.version == 2
    cached = engine.lookup("88.101/SN-1")
    assert isinstance(cached, CachedRecord) and cached.stored.version == 2


async def test_negative_load_started_before_invalidate_is_not_cached_after_it():
    engine, source, _ = make_engine()
    source.gate = asyncio.Event()
    before = await started(engine, source, h("88.101/SN-1"))
    source.put(stored("88.101/SN-1"))
    engine.invalidate("88.101/SN-1")
    source.gate.set()
    assert await within(before) is None
    assert engine.lookup("88.101/SN-1") is None
    source.gate = None
    assert await engine.resolve(h("88.101/SN-1")) is not None


async def test_invalidate_all_during_a_load_keeps_it_out_of_the_cache():
    engine, source, _ = make_engine(stored("88.101/SN-1"))
    source.gate = asyncio.Event()
    before = await started(engine, source, h("88.101/SN-1"))
    engine.invalidate_all()
    source.gate.set()
    assert await within(before) is not None
    assert engine.lookup("88.101/SN-1") is None


def _after_hops(loop: asyncio.AbstractEventLoop, hops: int, fn, *args) -> None:
    if hops == 0:
        fn(*args)
    else:
        loop.call_soon(_after_hops, loop, hops - 1, fn, *args)


@pytest.mark.parametrize("hops", range(6))
async def test_invalidate_landing_while_the_load_hands_over_its_answer(hops):
    """The invalidation race at every point between the read returning and the answer being stored.

    The read takes its answer before the write; the write's invalidation runs ``hops`` event-loop
    callbacks after the read returns. Wherever it lands, once it has run the old answer must not be
    in the cache.
    """
    engine, source, _ = make_engine(stored("88.101/SN-1", version=1))
    loop = asyncio.get_running_loop()
    invalidated = loop.create_future()

    def write_and_invalidate(key):
        source.put(stored("88.101/SN-1", version=2))
        engine.invalidate(key)
        invalidated.set_result(None)

    def schedule(key):
        source.on_return = None
        _after_hops(loop, hops, write_and_invalidate, key)

    source.on_return = schedule
    entry = await engine.resolve(h("88.101/SN-1"))
    await within(invalidated)
    assert entry.stored.version == 1
    cached = engine.lookup("88.101/SN-1")
    assert cached is None, f"version {cached.stored.version} cached after its invalidation"


async def test_invalidate_between_two_waiters_of_one_load_keeps_it_out_of_the_cache():
    """Two requests share a load; the first, once answered, triggers an invalidation of the key.

    The second waiter resumes after that invalidation and must not store the pre-invalidation answer.
    """
    engine, source, _ = make_engine(stored("88.101/SN-1", version=1))
    source.gate = asyncio.Event()

    async def resolve_then_write():
        entry = await engine.resolve(h("88.101/SN-1"))
        source.put(stored("88.101/SN-1", version=2))
        engine.invalidate("88.101/SN-1")
        return entry

    first = asyncio.create_task(resolve_then_write())
    second = asyncio.create_task(engine.resolve(h("88.101/SN-1")))
    await within(source.entered.wait())
    source.gate.set()
    assert (await within(first)).stored.version == 1
    assert (await within(second)).stored.version == 1
    assert len(source.calls) == 1
    cached = engine.lookup("88.101/SN-1")
    assert cached is None, f"version {cached.stored.version} cached after its invalidation"


# ------------------------------------------------------------------------------------------- enabling


async def test_disable_empties_and_bypasses_the_cache():
    engine, source, _ = make_engine(stored("88.101/A"))
    await engine.resolve(h("88.101/A"))
    await engine.resolve(h("88.101/NOPE"))
    engine.set_enabled(False)
    assert engine.lookup("88.101/A") is None
    assert engine.lookup("88.101/NOPE") is None
    calls = len(source.calls)
    assert await engine.resolve(h("88.101/A")) is not None
    assert await engine.resolve(h("88.101/A")) is not None
    assert await engine.resolve(h("88.101/NOPE")) is None
    assert await engine.resolve(h("88.101/NOPE")) is None
    assert len(source.calls) == calls + 4
    stats = engine.stats()
    assert stats["enabled"] is False
    assert (stats["entries"], stats["negative_entries"], stats["bytes"]) == (0, 0, 0)


async def test_enable_restores_caching():
    engine, source, _ = make_engine(stored("88.101/A"))
    engine.set_enabled(False)
    engine.set_enabled(True)
    assert engine.stats()["enabled"] is True
    await engine.resolve(h("88.101/A"))
    await engine.resolve(h("88.101/A"))
    assert len(source.calls) == 1


async def test_enable_does_not_override_a_cache_configured_off():
    engine, source, _ = make_engine(stored("88.101/A"), enabled=False)
    assert engine.stats()["enabled"] is False
    engine.set_enabled(True)
    assert engine.stats()["enabled"] is False
    await engine.resolve(h("88.101/A"))
    await engine.resolve(h("88.101/A"))
    await engine.resolve(h("88.101/NOPE"))
    await engine.resolve(h("88.101/NOPE"))
    assert len(source.calls) == 4
    assert engine.lookup("88.101/A") is None


async def test_load_in_flight_when_disabled_is_not_cached_after_re_enable():
    engine, source, _ = make_engine(stored("88.101/A"))
    source.gate = asyncio.Event()
    before = await started(engine, source, h("88.101/A"))
    engine.set_enabled(False)
    engine.set_enabled(True)
    source.gate.set()
    assert await within(before) is not None
    assert engine.lookup("88.101/A") is None


async def test_load_finishing_while_disabled_is_not_cached():
    engine, source, _ = make_engine(stored("88.101/A"))
    source.gate = asyncio.Event()
    task = asyncio.create_task(engine.resolve(h("88.101/A")))
    await within(source.entered.wait())
    engine.set_enabled(False)
    source.gate.set()
    assert await within(task) is not None
    assert engine.stats()["entries"] == 0


# ------------------------------------------------------------------------------------------- stats


async def test_stats_counts_hits_misses_entries_and_bytes():
    record = stored("88.101/A")
    engine, source, _ = make_engine(record)
    assert engine.stats() == {
        "enabled": True,
        "entries": 0,
        "negative_entries": 0,
        "bytes": 0,
        "hits": 0,
        "misses": 0,
        "evictions": 0,
    }
    await engine.resolve(h("88.101/A"))  # miss
    await engine.resolve(h("88.101/A"))  # hit
    engine.lookup("88.101/A")  # hit
    await engine.resolve(h("88.101/NOPE"))  # miss
    await engine.resolve(h("88.101/NOPE"))  # negative hit
    engine.lookup("88.101/OTHER")  # neither
    assert engine.stats() == {
        "enabled": True,
        "entries": 1,
        "negative_entries": 1,
        "bytes": record.size,
        "hits": 3,
        "misses": 2,
        "evictions": 0,
    }


async def test_stats_evictions_sum_both_caches():
    engine, source, _ = make_engine(stored("88.101/A"), stored("88.101/B"), max_entries=1, negative_max_entries=1)
    await engine.resolve(h("88.101/A"))
    await engine.resolve(h("88.101/B"))
    await engine.resolve(h("88.101/X"))
    await engine.resolve(h("88.101/Y"))
    stats = engine.stats()
    assert stats["evictions"] == 2
    assert stats["entries"] == 1 and stats["negative_entries"] == 1
    assert stats["bytes"] == source.records["88.101/B"].size
