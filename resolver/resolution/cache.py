"""An in-process cache: TTL + LRU with caps on entries and bytes, one in-flight load per key.

Modelled on CoreDNS's cache plugin: TTLs are clamped in one place (``TtlPolicy``), positive and
negative answers live in separate caches with their own caps, concurrent misses for one key share one
load (``SingleFlight``), and the clock is injected. A load that is overtaken by an invalidation of its
key is "poisoned": its result is handed to the waiting requests but not cached, so an answer read
before a write can never be stored after that write's invalidation.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, Hashable, TypeVar

V = TypeVar("V")
K = TypeVar("K", bound=Hashable)
Clock = Callable[[], float]


@dataclass(frozen=True)
class TtlPolicy:
    min_ttl: int = 0
    max_ttl: int = 3600
    negative_ttl: int = 60

    def positive(self, ttl: int) -> int:
        return max(self.min_ttl, min(ttl, self.max_ttl))

    def negative(self) -> int:
        return min(self.negative_ttl, self.max_ttl)


class _Slot:
    __slots__ = ("value", "expires", "size")

    def __init__(self, value: Any, expires: float, size: int) -> None:
        self.value = value
        self.expires = expires
        self.size = size


class TtlLru(Generic[K, V]):
    """A dict with expiry and least-recently-used eviction past ``max_entries`` or ``max_bytes``.

    An entry past its TTL is no longer returned by ``get``, but it is kept for ``keep_expired`` seconds
    more (within the same caps) for ``get_expired``: what a resolver may serve stale when its source
    fails.
    """

    def __init__(self, max_entries: int, max_bytes: int | None, clock: Clock, keep_expired: float = 0.0) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.keep_expired = keep_expired
        self._clock = clock
        self._data: OrderedDict[K, _Slot] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def get(self, key: K) -> V | None:
        slot = self._data.get(key)
        if slot is None:
            return None
        now = self._clock()
        if slot.expires <= now:
            if slot.expires + self.keep_expired <= now:
                self._remove(key)
            return None
        self._data.move_to_end(key)
        return slot.value

    def get_expired(self, key: K) -> tuple[V, float] | None:
        """An entry past its TTL but still kept: (value, seconds since it expired); else None."""
        slot = self._data.get(key)
        if slot is None:
            return None
        age = self._clock() - slot.expires
        if age < 0:
            return None
        if age >= self.keep_expired:
            self._remove(key)
            return None
        return slot.value, age

    def put(self, key: K, value: V, ttl: float, size: int = 1) -> None:
        if ttl <= 0 or self.max_entries <= 0 or (self.max_bytes is not None and size > self.max_bytes):
            return
        self._remove(key)
        self._data[key] = _Slot(value, self._clock() + ttl, size)
        self.bytes += size
        while len(self._data) > self.max_entries or (self.max_bytes is not None and self.bytes > self.max_bytes):
            oldest = next(iter(self._data))
            self._remove(oldest)
            self.evictions += 1

    def pop(self, key: K) -> None:
        self._remove(key)

    def _remove(self, key: K) -> None:
        slot = self._data.pop(key, None)
        if slot is not None:
            self.bytes -= slot.size

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)


class _Flight:
    __slots__ = ("task", "poisoned")

    def __init__(self) -> None:
        self.task: asyncio.Future | None = None
        self.poisoned = False


class SingleFlight(Generic[K, V]):
    """At most one running load per key; everyone asking meanwhile awaits the same result.

    ``keep(result)`` runs in the loading task right as the load completes, unless the key was
    invalidated (``poison``) meanwhile: with no await in between, no invalidation can slip between the
    read and the caching of its result.
    """

    def __init__(self) -> None:
        self._flights: dict[K, _Flight] = {}

    async def do(self, key: K, load: Callable[[], Awaitable[V]], keep: Callable[[V], None] | None = None) -> tuple[V, bool]:
        """(result, fresh): ``fresh`` is False when the key was invalidated while loading."""
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight()
            flight.task = asyncio.ensure_future(self._run(flight, load, keep))
            self._flights[key] = flight
            flight.task.add_done_callback(lambda _t, k=key, f=flight: self._done(k, f))
        result = await asyncio.shield(flight.task)
        return result, not flight.poisoned

    @staticmethod
    async def _run(flight: _Flight, load: Callable[[], Awaitable[V]], keep: Callable[[V], None] | None) -> V:
        result = await load()
        if keep is not None and not flight.poisoned:
            keep(result)
        return result

    def _done(self, key: K, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.task.cancelled():
            flight.task.exception()  # retrieved: waiters re-raise it; nobody logs "never retrieved"

    def poison(self, key: K) -> None:
        flight = self._flights.get(key)
        if flight is not None:
            flight.poisoned = True
            del self._flights[key]

    def poison_all(self) -> None:
        for flight in self._flights.values():
            flight.poisoned = True
        self._flights.clear()

    def __len__(self) -> int:
        return len(self._flights)
