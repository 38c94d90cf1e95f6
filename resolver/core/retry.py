"""Optimistic concurrency: run a read-modify-write again when the record changed underneath it.

Between attempts the caller waits, with exponential back-off and full jitter (a random wait between
zero and ``base × 2^attempt``, capped), so that writers that collided do not collide again in step.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from registry.errors import ConcurrentUpdate, IdresError

T = TypeVar("T")
ATTEMPTS = 5


@dataclass(frozen=True)
class Backoff:
    """Waits between attempts: up to ``base × 2^n`` seconds after the n-th conflict, at most ``cap``."""

    base: float = 0.002
    cap: float = 0.1

    def delay(self, conflicts: int, rng: Callable[[], float] = random.random) -> float:
        return rng() * min(self.cap, self.base * (2 ** conflicts))


DEFAULT_BACKOFF = Backoff()


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int = ATTEMPTS,
    also: tuple[type[IdresError], ...] = (),
    gave_up: str | None = None,
    backoff: Backoff | None = DEFAULT_BACKOFF,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``attempt()`` until it raises no ConcurrentUpdate (nor one of ``also``), at most ``attempts`` times,
    waiting ``backoff`` between attempts (no wait with None).

    Each attempt must read afresh what it changes. After the last conflict, that conflict propagates, or
    a ConcurrentUpdate saying ``gave_up`` when one is given.
    """
    conflicts = (ConcurrentUpdate, *also)
    for n in range(attempts - 1):
        try:
            return await attempt()
        except conflicts:
            if backoff is not None:
                await sleep(backoff.delay(n))
    try:
        return await attempt()
    except conflicts:
        if gave_up is None:
            raise
        raise ConcurrentUpdate(gave_up) from None
