"""Rate limits (core/limits.py), with counters shared as the store shares them and an injected clock."""

from __future__ import annotations

import pytest

from registry.errors import TooManyRequests
from registry.model import ValueRef
from resolver.core.callers import Caller
from resolver.core.limits import LimitSettings, RateLimits


class SharedCounters:
    """In memory, as ``rate_counts`` is in the database: one table for every process."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], int] = {}

    async def add(self, keys, started, increments):
        for key, n in zip(keys, increments):
            self.rows[(key, started)] = self.rows.get((key, started), 0) + n
        return {key: self.rows[(key, started)] for key in keys}

    async def counts(self, keys, started):
        return {key: self.rows[(key, started)] for key in keys if (key, started) in self.rows}

    async def prune(self, before):
        self.rows = {k: v for k, v in self.rows.items() if k[1] >= before}


class Clock:
    def __init__(self, now: float = 1_000_040.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


CALLER = Caller(ValueRef(300, "88.101/LINE"))


async def test_writes_of_several_processes_stay_within_the_limit_plus_one_sync_of_each():
    shared, clock = SharedCounters(), Clock()
    settings = LimitSettings(window=60, writes_per_identity=100)
    processes = [RateLimits(shared, settings, clock) for _ in range(2)]
    admitted = 0
    for _ in range(10):  # ten sync intervals
        for limits in processes:
            for _ in range(20):
                try:
                    await limits.check_writes(CALLER, None)
                    admitted += 1
                except TooManyRequests as refused:
                    assert refused.retry_after == 40  # the window began at 1,000,020 and ends at 1,000,080
        for limits in processes:
            await limits.sync()
    assert 100 <= admitted <= 100 + 20  # the limit, plus what the other process admitted in one interval
    clock.now += 60  # a new window
    await processes[0].check_writes(CALLER, None)


async def test_failed_logins_are_counted_at_once_for_every_process():
    shared, clock = SharedCounters(), Clock()
    settings = LimitSettings(window=60, failed_logins_per_identity=3, failed_logins_per_address=100)
    first, second = RateLimits(shared, settings, clock), RateLimits(shared, settings, clock)
    identity = ValueRef(300, "88.101/ADMIN")
    await first.failed_login(identity, "10.0.0.1")
    await second.failed_login(identity, "10.0.0.2")
    await first.check_login(identity, "10.0.0.3")
    with pytest.raises(TooManyRequests):
        await second.failed_login(identity, "10.0.0.4")  # the third failure, whichever process saw it
    with pytest.raises(TooManyRequests):
        await first.check_login(identity, "10.0.0.5")  # the other process knows before checking anything
    await first.check_login(ValueRef(300, "88.101/OTHER"), "10.0.0.5")
    clock.now += 60
    await first.check_login(identity, "10.0.0.5")


async def test_limits_of_zero_are_off():
    limits = RateLimits(SharedCounters(), LimitSettings(), Clock())
    for _ in range(1000):
        await limits.check_writes(CALLER, "10.0.0.1")
    await limits.failed_login(ValueRef(300, "88.101/ADMIN"), "10.0.0.1")
