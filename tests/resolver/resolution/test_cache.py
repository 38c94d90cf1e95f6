"""Unit tests of resolver.cache: TTL clamping, the TTL+LRU map and single-flight loads.

No I/O and no real time: the LRU runs on a fake clock and loads are gated by asyncio events.
"""

from __future__ import annotations

import asyncio

import pytest

from resolver.resolution.cache import SingleFlight, TtlLru, TtlPolicy


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class GatedLoad:
    """A load function that counts its calls and returns (or raises) only once released."""

    def __init__(self, result: object = "value", error: BaseException | None = None) -> None:
        self.result = result
        self.error = error
        self.calls = 0
        self.finished = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        self.finished += 1
        if self.error is not None:
            raise self.error
        return self.result


async def within(awaitable, timeout: float = 5.0):
    """Await with a deadline, so a broken interleaving fails the test instead of hanging it."""
    return await asyncio.wait_for(awaitable, timeout)


async def joined(flights: SingleFlight, key: str, load) -> asyncio.Task:
    """A task calling ``flights.do(key, load)``, returned once it is inside ``do`` awaiting the load.

    ``do`` joins or starts a flight synchronously before its first await, so once the task has signalled
    that it is about to call ``do`` and the test has been woken, the task is registered with the flight.
    """
    entered = asyncio.Event()

    async def call():
        entered.set()
        return await flights.do(key, load)

    task = asyncio.create_task(call())
    await within(entered.wait())
    return task


# --------------------------------------------------------------------------------------------- TtlPolicy


class TestTtlPolicy:
    def test_positive_inside_bounds_is_unchanged(self):
        assert TtlPolicy(min_ttl=10, max_ttl=100).positive(50) == 50

    def test_positive_below_min_is_raised_to_min(self):
        assert TtlPolicy(min_ttl=10, max_ttl=100).positive(3) == 10

    def test_positive_above_max_is_capped(self):
        assert TtlPolicy(min_ttl=10, max_ttl=100).positive(86400) == 100

    def test_positive_bounds_are_inclusive(self):
        policy = TtlPolicy(min_ttl=10, max_ttl=100)
        assert policy.positive(10) == 10
        assert policy.positive(100) == 100

    def test_positive_negative_or_zero_ttl_becomes_min(self):
        assert TtlPolicy(min_ttl=0, max_ttl=100).positive(-5) == 0
        assert TtlPolicy(min_ttl=7, max_ttl=100).positive(0) == 7
        assert TtlPolicy(min_ttl=7, max_ttl=100).positive(-5) == 7

    def test_negative_uses_negative_ttl(self):
        assert TtlPolicy(max_ttl=3600, negative_ttl=45).negative() == 45

    def test_negative_ttl_is_capped_by_max(self):
        assert TtlPolicy(max_ttl=10, negative_ttl=60).negative() == 10

    def test_defaults(self):
        policy = TtlPolicy()
        assert policy.positive(10**6) == 3600
        assert policy.negative() == 60


# ------------------------------------------------------------------------------------------------ TtlLru


class TestTtlLru:
    def test_get_missing_is_none(self):
        cache = TtlLru(10, None, FakeClock())
        assert cache.get("nope") is None

    def test_put_then_get(self):
        cache = TtlLru(10, None, FakeClock())
        cache.put("a", "A", ttl=30)
        assert cache.get("a") == "A"
        assert len(cache) == 1

    def test_expiry_exactly_at_the_boundary(self):
        clock = FakeClock(1000.0)
        cache = TtlLru(10, 1000, clock)
        cache.put("a", "A", ttl=30, size=7)
        clock.now = 1029.999
        assert cache.get("a") == "A"
        clock.now = 1030.0
        assert cache.get("a") is None
        # an expired entry found by get is removed, with its bytes
        assert len(cache) == 0
        assert cache.bytes == 0

    def test_expiry_is_relative_to_put_time(self):
        clock = FakeClock(0.0)
        cache = TtlLru(10, None, clock)
        clock.advance(100)
        cache.put("a", "A", ttl=10)
        clock.advance(9.5)
        assert cache.get("a") == "A"
        clock.advance(0.5)
        assert cache.get("a") is None

    def test_get_does_not_extend_the_ttl(self):
        clock = FakeClock(0.0)
        cache = TtlLru(10, None, clock)
        cache.put("a", "A", ttl=10)
        clock.now = 9
        assert cache.get("a") == "A"
        clock.now = 10
        assert cache.get("a") is None

    def test_put_replaces_value_and_ttl(self):
        clock = FakeClock(0.0)
        cache = TtlLru(10, None, clock)
        cache.put("a", "old", ttl=5)
        cache.put("a", "new", ttl=50)
        clock.now = 20
        assert cache.get("a") == "new"
        assert len(cache) == 1

    def test_lru_order_is_updated_by_get(self):
        cache = TtlLru(2, None, FakeClock())
        cache.put("a", "A", ttl=60)
        cache.put("b", "B", ttl=60)
        assert cache.get("a") == "A"  # a is now the most recently used
        cache.put("c", "C", ttl=60)
        assert cache.get("b") is None
        assert cache.get("a") == "A"
        assert cache.get("c") == "C"
        assert cache.evictions == 1

    def test_without_get_the_oldest_put_is_evicted(self):
        cache = TtlLru(2, None, FakeClock())
        cache.put("a", "A", ttl=60)
        cache.put("b", "B", ttl=60)
        cache.put("c", "C", ttl=60)
        assert cache.get("a") is None
        assert cache.get("b") == "B"
        assert cache.get("c") == "C"

    def test_put_of_existing_key_refreshes_its_lru_position(self):
        cache = TtlLru(2, None, FakeClock())
        cache.put("a", "A", ttl=60)
        cache.put("b", "B", ttl=60)
        cache.put("a", "A2", ttl=60)
        cache.put("c", "C", ttl=60)
        assert cache.get("b") is None
        assert cache.get("a") == "A2"

    def test_eviction_past_max_entries_counts_each_eviction(self):
        cache = TtlLru(3, None, FakeClock())
        for i in range(10):
            cache.put(i, i, ttl=60)
        assert len(cache) == 3
        assert cache.evictions == 7
        assert [cache.get(i) for i in range(10)] == [None] * 7 + [7, 8, 9]

    def test_eviction_past_max_bytes(self):
        cache = TtlLru(100, 10, FakeClock())
        cache.put("a", "A", ttl=60, size=4)
        cache.put("b", "B", ttl=60, size=4)
        assert cache.bytes == 8
        cache.put("c", "C", ttl=60, size=4)
        assert cache.get("a") is None
        assert cache.get("b") == "B"
        assert cache.get("c") == "C"
        assert cache.bytes == 8
        assert cache.evictions == 1

    def test_one_large_put_evicts_as_many_as_needed(self):
        cache = TtlLru(100, 10, FakeClock())
        for key in "abcde":
            cache.put(key, key, ttl=60, size=2)
        assert cache.bytes == 10
        cache.put("big", "BIG", ttl=60, size=9)
        assert len(cache) == 1
        assert cache.get("big") == "BIG"
        assert cache.bytes == 9
        assert cache.evictions == 5

    def test_item_of_exactly_max_bytes_is_stored(self):
        cache = TtlLru(100, 10, FakeClock())
        cache.put("a", "A", ttl=60, size=10)
        assert cache.get("a") == "A"
        assert cache.bytes == 10

    def test_oversize_item_is_not_stored_and_evicts_nothing(self):
        cache = TtlLru(100, 10, FakeClock())
        cache.put("a", "A", ttl=60, size=5)
        cache.put("huge", "H", ttl=60, size=11)
        assert cache.get("huge") is None
        assert cache.get("a") == "A"
        assert cache.bytes == 5
        assert cache.evictions == 0

    def test_no_byte_cap_when_max_bytes_is_none(self):
        cache = TtlLru(100, None, FakeClock())
        cache.put("a", "A", ttl=60, size=10**9)
        cache.put("b", "B", ttl=60, size=10**9)
        assert cache.get("a") == "A"
        assert cache.get("b") == "B"
        assert cache.bytes == 2 * 10**9

    @pytest.mark.parametrize("ttl", [0, -1, -0.5])
    def test_ttl_zero_or_negative_is_not_stored(self, ttl):
        cache = TtlLru(10, 100, FakeClock())
        cache.put("a", "A", ttl=ttl, size=3)
        assert len(cache) == 0
        assert cache.bytes == 0
        assert cache.get("a") is None

    def test_fractional_ttl_is_stored(self):
        clock = FakeClock(0.0)
        cache = TtlLru(10, None, clock)
        cache.put("a", "A", ttl=0.25)
        assert cache.get("a") == "A"
        clock.now = 0.25
        assert cache.get("a") is None

    def test_max_entries_zero_stores_nothing(self):
        cache = TtlLru(0, None, FakeClock())
        cache.put("a", "A", ttl=60)
        assert cache.get("a") is None
        assert len(cache) == 0
        assert cache.bytes == 0

    def test_replacing_a_key_does_not_double_count_bytes(self):
        cache = TtlLru(10, 100, FakeClock())
        cache.put("a", "A", ttl=60, size=30)
        cache.put("a", "A2", ttl=60, size=20)
        assert cache.bytes == 20
        assert len(cache) == 1
        assert cache.evictions == 0

    def test_replacing_a_key_with_a_bigger_value_can_stay_within_the_cap(self):
        cache = TtlLru(10, 10, FakeClock())
        cache.put("a", "A", ttl=60, size=6)
        cache.put("a", "A2", ttl=60, size=9)  # 9, not 6 + 9
        assert cache.get("a") == "A2"
        assert cache.evictions == 0

    def test_pop_removes_entry_and_its_bytes(self):
        cache = TtlLru(10, 100, FakeClock())
        cache.put("a", "A", ttl=60, size=30)
        cache.put("b", "B", ttl=60, size=20)
        cache.pop("a")
        assert cache.get("a") is None
        assert cache.get("b") == "B"
        assert cache.bytes == 20
        assert len(cache) == 1

    def test_pop_of_missing_key_changes_nothing(self):
        cache = TtlLru(10, 100, FakeClock())
        cache.put("a", "A", ttl=60, size=30)
        cache.pop("zzz")
        cache.pop("a")
        cache.pop("a")
        assert cache.bytes == 0
        assert len(cache) == 0

    def test_pop_is_not_an_eviction(self):
        cache = TtlLru(10, 100, FakeClock())
        cache.put("a", "A", ttl=60, size=30)
        cache.pop("a")
        assert cache.evictions == 0

    def test_clear_resets_entries_and_bytes(self):
        cache = TtlLru(10, 100, FakeClock())
        cache.put("a", "A", ttl=60, size=30)
        cache.put("b", "B", ttl=60, size=20)
        cache.clear()
        assert len(cache) == 0
        assert cache.bytes == 0
        assert cache.get("a") is None
        # the cache is usable after clear, and its accounting starts from zero
        cache.put("c", "C", ttl=60, size=100)
        assert cache.bytes == 100
        assert cache.get("c") == "C"
        assert cache.evictions == 0

    def test_expiry_is_not_an_eviction(self):
        clock = FakeClock(0.0)
        cache = TtlLru(10, None, clock)
        cache.put("a", "A", ttl=1)
        clock.now = 5
        assert cache.get("a") is None
        assert cache.evictions == 0

    def test_bytes_track_every_path(self):
        clock = FakeClock(0.0)
        cache = TtlLru(3, 100, clock)
        cache.put("a", 1, ttl=10, size=10)
        cache.put("b", 2, ttl=60, size=20)
        cache.put("c", 3, ttl=60, size=30)
        cache.put("d", 4, ttl=60, size=5)  # evicts a (entries cap)
        assert cache.bytes == 55
        clock.now = 100
        assert cache.get("b") is None  # expired
        assert cache.bytes == 35
        cache.pop("c")
        assert cache.bytes == 5
        assert cache.evictions == 1


    def test_expired_entries_are_kept_for_the_keeping_window_only(self):
        clock = FakeClock(0.0)
        cache = TtlLru(10, 1000, clock, keep_expired=100)
        cache.put("a", "A", ttl=30, size=7)
        assert cache.get_expired("a") is None  # still fresh
        clock.now = 40
        assert cache.get("a") is None  # past its TTL: not a hit any more
        assert cache.get_expired("a") == ("A", 10)
        assert (len(cache), cache.bytes) == (1, 7)  # kept, and still counted
        clock.now = 130
        assert cache.get_expired("a") is None  # 100 s past expiry: gone, with its bytes
        assert (len(cache), cache.bytes) == (0, 0)

    def test_kept_expired_entries_count_towards_the_caps(self):
        clock = FakeClock(0.0)
        cache = TtlLru(2, None, clock, keep_expired=1000)
        cache.put("old", 1, ttl=5)
        clock.now = 10
        cache.put("b", 2, ttl=60)
        cache.put("c", 3, ttl=60)  # the expired entry is the least recently used: it goes first
        assert cache.get_expired("old") is None and cache.evictions == 1
        assert (cache.get("b"), cache.get("c")) == (2, 3)

    def test_without_a_keeping_window_nothing_expired_is_kept(self):
        clock = FakeClock(0.0)
        cache = TtlLru(10, None, clock)
        cache.put("a", "A", ttl=5)
        clock.now = 5
        assert cache.get_expired("a") is None and len(cache) == 0

# ------------------------------------------------------------------------------------------- SingleFlight


class TestSingleFlight:
    async def test_single_caller_gets_result_and_fresh(self):
        flights: SingleFlight[str, object] = SingleFlight()

        async def load():
            return 42

        assert await flights.do("k", load) == (42, True)
        assert len(flights) == 0

    async def test_concurrent_callers_share_one_load(self):
        flights: SingleFlight[str, object] = SingleFlight()
        load = GatedLoad(result={"answer": 1})
        tasks = [asyncio.create_task(flights.do("k", load)) for _ in range(5)]
        await within(load.started.wait())  # every task ran into do() before the load's first step
        assert len(flights) == 1
        load.release.set()
        results = await within(asyncio.gather(*tasks))
        assert load.calls == 1
        assert all(result is load.result for result, _ in results)
        assert all(fresh for _, fresh in results)
        assert len(flights) == 0

    async def test_a_caller_arriving_during_the_load_joins_it(self):
        flights: SingleFlight[str, object] = SingleFlight()
        load = GatedLoad()
        first = asyncio.create_task(flights.do("k", load))
        await within(load.started.wait())
        late = await joined(flights, "k", load)
        assert not late.done()
        load.release.set()
        assert await within(first) == ("value", True)
        assert await within(late) == ("value", True)
        assert load.calls == 1

    async def test_different_keys_load_separately(self):
        flights: SingleFlight[str, object] = SingleFlight()
        load_a, load_b = GatedLoad("A"), GatedLoad("B")
        a = asyncio.create_task(flights.do("a", load_a))
        b = asyncio.create_task(flights.do("b", load_b))
        await within(load_a.started.wait())
        await within(load_b.started.wait())
        assert len(flights) == 2
        load_a.release.set()
        load_b.release.set()
        assert await within(a) == ("A", True)
        assert await within(b) == ("B", True)

    async def test_a_new_call_after_completion_loads_again(self):
        flights: SingleFlight[str, object] = SingleFlight()
        calls = 0

        async def load():
            nonlocal calls
            calls += 1
            return calls

        assert await flights.do("k", load) == (1, True)
        assert await flights.do("k", load) == (2, True)
        assert calls == 2

    async def test_exception_propagates_to_every_waiter(self):
        flights: SingleFlight[str, object] = SingleFlight()
        error = ValueError("store down")
        load = GatedLoad(error=error)
        tasks = [asyncio.create_task(flights.do("k", load)) for _ in range(3)]
        await within(load.started.wait())
        load.release.set()
        outcomes = await within(asyncio.gather(*tasks, return_exceptions=True))
        assert load.calls == 1
        assert all(outcome is error for outcome in outcomes)
        assert len(flights) == 0

    async def test_after_a_failed_load_the_next_call_loads_again(self):
        flights: SingleFlight[str, object] = SingleFlight()
        attempts = 0

        async def load():
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise RuntimeError("first attempt fails")
            return "ok"

        with pytest.raises(RuntimeError):
            await flights.do("k", load)
        assert await flights.do("k", load) == ("ok", True)
        assert attempts == 2

    async def test_a_cancelled_waiter_does_not_cancel_the_load_for_others(self):
        flights: SingleFlight[str, object] = SingleFlight()
        load = GatedLoad()
        creator = asyncio.create_task(flights.do("k", load))  # the caller that started the load
        other = asyncio.create_task(flights.do("k", load))
        await within(load.started.wait())
        creator.cancel()
        with pytest.raises(asyncio.CancelledError):
            await within(creator)
        assert not other.done()
        load.release.set()
        assert await within(other) == ("value", True)
        assert load.calls == 1
        assert load.finished == 1

    async def test_load_survives_when_every_waiter_is_cancelled(self):
        flights: SingleFlight[str, object] = SingleFlight()
        load = GatedLoad()
        waiters = [asyncio.create_task(flights.do("k", load)) for _ in range(2)]
        await within(load.started.wait())
        for waiter in waiters:
            waiter.cancel()
        await within(asyncio.gather(*waiters, return_exceptions=True))
        assert all(w.cancelled() for w in waiters)
        # the load is still in flight: a new caller joins it instead of starting another
        joiner = await joined(flights, "k", load)
        assert len(flights) == 1
        load.release.set()
        assert await within(joiner) == ("value", True)
        assert load.calls == 1
        assert load.finished == 1

    async def test_poison_during_load_makes_it_not_fresh(self):
        flights: SingleFlight[str, object] = SingleFlight()
        load = GatedLoad("old")
        waiter = asyncio.create_task(flights.do("k", load))
        await within(load.started.wait())
        flights.poison("k")
        assert len(flights) == 0
        load.release.set()
        # the waiter still gets the answer, flagged as not to be cached
        assert await within(waiter) == ("old", False)

    async def test_poison_marks_every_waiter_of_the_load(self):
        flights: SingleFlight[str, object] = SingleFlight()
        load = GatedLoad("old")
        waiters = [asyncio.create_task(flights.do("k", load)) for _ in range(3)]
        await within(load.started.wait())
        flights.poison("k")
        load.release.set()
        assert await within(asyncio.gather(*waiters)) == [("old", False)] * 3

    async def test_poison_lets_a_new_call_start_a_new_load(self):
        flights: SingleFlight[str, object] = SingleFlight()
        old_load, new_load = GatedLoad("old"), GatedLoad("new")
        old = asyncio.create_task(flights.do("k", old_load))
        await within(old_load.started.wait())
        flights.poison("k")
        new = asyncio.create_task(flights.do("k", new_load))
        await within(new_load.started.wait())
        assert new_load.calls == 1
        # the poisoned load finishing first must not unregister the new one
        old_load.release.set()
        assert await within(old) == ("old", False)
        assert len(flights) == 1
        joiner = await joined(flights, "k", new_load)
        new_load.release.set()
        assert await within(new) == ("new", True)
        assert await within(joiner) == ("new", True)
        assert new_load.calls == 1
        assert old_load.calls == 1
        assert len(flights) == 0

    async def test_poison_of_an_idle_key_is_harmless(self):
        flights: SingleFlight[str, object] = SingleFlight()
        flights.poison("nothing")

        async def load():
            return 1

        assert await flights.do("nothing", load) == (1, True)

    async def test_poison_of_one_key_leaves_others_fresh(self):
        flights: SingleFlight[str, object] = SingleFlight()
        load_a, load_b = GatedLoad("A"), GatedLoad("B")
        a = asyncio.create_task(flights.do("a", load_a))
        b = asyncio.create_task(flights.do("b", load_b))
        await within(load_a.started.wait())
        await within(load_b.started.wait())
        flights.poison("a")
        load_a.release.set()
        load_b.release.set()
        assert await within(a) == ("A", False)
        assert await within(b) == ("B", True)

    async def test_poison_after_completion_does_not_affect_finished_results(self):
        flights: SingleFlight[str, object] = SingleFlight()

        async def load():
            return "v"

        result = await flights.do("k", load)
        flights.poison("k")
        assert result == ("v", True)

    async def test_poisoned_load_that_fails_still_raises_to_its_waiters(self):
        flights: SingleFlight[str, object] = SingleFlight()
        error = OSError("gone")
        load = GatedLoad(error=error)
        waiter = asyncio.create_task(flights.do("k", load))
        await within(load.started.wait())
        flights.poison("k")
        load.release.set()
        with pytest.raises(OSError) as info:
            await within(waiter)
        assert info.value is error

    async def test_poison_all(self):
        flights: SingleFlight[str, object] = SingleFlight()
        loads = {key: GatedLoad(key.upper()) for key in "abc"}
        tasks = {key: asyncio.create_task(flights.do(key, load)) for key, load in loads.items()}
        for load in loads.values():
            await within(load.started.wait())
        assert len(flights) == 3
        flights.poison_all()
        assert len(flights) == 0
        # new calls start new loads while the poisoned ones are still running
        fresh_load = GatedLoad("A2")
        fresh = asyncio.create_task(flights.do("a", fresh_load))
        await within(fresh_load.started.wait())
        for load in loads.values():
            load.release.set()
        fresh_load.release.set()
        for key, task in tasks.items():
            assert await within(task) == (key.upper(), False)
        assert await within(fresh) == ("A2", True)
        assert all(load.calls == 1 for load in loads.values())
