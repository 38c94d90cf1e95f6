"""Resolution: cache, then the local store. No aiohttp, no asyncpg.

``lookup`` is the hot path: one dictionary probe, no await. ``resolve`` adds the authority check and a
single-flight load from the store on a miss. Negative answers (an authoritative "no such handle") are
cached too, with their own TTL and cap. Invalidation comes from the change log (see invalidation.py)
and from this process's own writes.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Hashable, Protocol

from registry.errors import PrefixNotHomed
from registry.model import Handle, Record
from registry.records import StoredRecord

from ..core.authority import CurrentAuthority
from .cache import SingleFlight, TtlLru, TtlPolicy


class RecordSource(Protocol):
    async def get(self, key: str) -> StoredRecord | None: ...


class CachedRecord:
    """A positive cache entry: the stored record and its renderings, keyed by representation.

    A transport that renders the record (the HTTP JSON answer, later an HTML page or a wire message)
    keeps its rendering here under a key of its own, so it is made once per record version.
    """

    __slots__ = ("stored", "renderings")

    def __init__(self, stored: StoredRecord) -> None:
        self.stored = stored
        self.renderings: dict[Hashable, Any] = {}


class _NotFound:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_FOUND"


NOT_FOUND = _NotFound()


class Engine:
    def __init__(
        self,
        source: RecordSource,
        authority: CurrentAuthority,
        *,
        policy: TtlPolicy = TtlPolicy(),
        max_entries: int = 200_000,
        max_bytes: int = 256 * 1024 * 1024,
        negative_max_entries: int = 100_000,
        enabled: bool = True,
        keep_expired: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.authority = authority
        self.policy = policy
        self.configured = enabled
        self.enabled = enabled
        self._wall = wall_clock
        self.positive: TtlLru[str, CachedRecord] = TtlLru(max_entries, max_bytes, clock, keep_expired)
        self.negative: TtlLru[str, _NotFound] = TtlLru(negative_max_entries, None, clock)
        self._flights: SingleFlight[str, CachedRecord | None] = SingleFlight()
        self.hits = 0
        self.misses = 0

    def lookup(self, key: str) -> CachedRecord | _NotFound | None:
        """The cached answer for a comparison key, if any. Synchronous: the hot path."""
        entry = self.positive.get(key)
        if entry is not None:
            self.hits += 1
            return entry
        if self.negative.get(key) is not None:
            self.hits += 1
            return NOT_FOUND
        return None

    def expired(self, key: str) -> tuple[CachedRecord, float] | None:
        """A positive entry kept past its TTL, and how many seconds ago it expired."""
        return self.positive.get_expired(key)

    async def resolve(self, handle: Handle) -> CachedRecord | None:
        """The record of a handle this node answers for (None if it has none); PrefixNotHomed otherwise."""
        entry = self.lookup(handle.key)
        if entry is not None:
            return None if entry is NOT_FOUND else entry  # type: ignore[return-value]
        if not self.authority.snapshot.covers(handle):
            raise PrefixNotHomed(handle=handle.text)
        self.misses += 1
        key = handle.key

        async def load() -> CachedRecord | None:
            stored = await self.source.get(key)
            return CachedRecord(stored) if stored is not None else None

        def keep(entry: CachedRecord | None) -> None:
            if not self.enabled:
                return
            if entry is None:
                self.negative.put(key, NOT_FOUND, self.policy.negative())
            else:
                ttl = self.policy.positive(entry.stored.cache_ttl(int(self._wall())))
                self.positive.put(key, entry, ttl, entry.stored.size)

        entry, _fresh = await self._flights.do(key, load, keep)
        return entry

    async def record_of(self, handle: Handle) -> Record | None:
        """The record of a handle under a prefix homed here, through the cache; None otherwise."""
        if not self.authority.snapshot.covers(handle):
            return None
        entry = await self.resolve(handle)
        return entry.stored.record if entry is not None else None

    def invalidate(self, key: str) -> None:
        self.positive.pop(key)
        self.negative.pop(key)
        self._flights.poison(key)

    def invalidate_all(self) -> None:
        self.positive.clear()
        self.negative.clear()
        self._flights.poison_all()

    def set_enabled(self, enabled: bool) -> None:
        """Switch caching off (and empty the cache) while invalidation cannot be trusted, and back on."""
        self.invalidate_all()  # loads in flight across the switch are not cached
        self.enabled = enabled and self.configured

    def stats(self) -> dict[str, int | bool]:
        return {
            "enabled": self.enabled,
            "entries": len(self.positive),
            "negative_entries": len(self.negative),
            "bytes": self.positive.bytes,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.positive.evictions + self.negative.evictions,
        }
