"""Resolution: the cache, then the local store or the node that serves the handle. No aiohttp, no asyncpg.

``peek``/``lookup`` are the hot path: one dictionary probe, no await. ``answer`` handles a miss: it asks
the authority snapshot who answers for the handle, then loads the record once per key however many
requests wait (single flight) — from the local store for a homed prefix, from the delegate (or the
root) otherwise, through ``Forwarder``. Positive and negative answers are cached with their TTLs.
An entry past its TTL is kept for the stale window: when the node serving it fails, it is served
stale (RFC 8767), and its refresh is tried at most once per refresh interval; a record homed here is
served stale while the database is unreachable. Invalidation comes from
the change log (see invalidation.py) and from this process's own writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Protocol, Sequence

from registry.errors import IdresError, PrefixNotHomed, ServerUnavailable, UpstreamInvalid, UpstreamUnavailable
from registry.model import Handle, HandleValue, Record
from registry.records import StoredRecord

from ..core.authority import CurrentAuthority, Delegated, Local
from .cache import SingleFlight, TtlLru, TtlPolicy
from .statistics import Statistics, Tally

HIT, URI_MISS, STALE, STALE_SERVED, BYPASS = "hit", "uri-miss", "stale", "stale-served", "bypass"
_DATABASE_FAILURES = (ServerUnavailable,)
_UPSTREAM_FAILURES = (UpstreamUnavailable, UpstreamInvalid)
LOCAL = "local"
FAILED_REFRESHES = 100_000


class RecordSource(Protocol):
    async def get(self, key: str) -> StoredRecord | None: ...


class CachedRecord:
    """A positive cache entry: the stored record and its renderings, keyed by representation.

    A transport that renders the record (the HTTP JSON answer, later an HTML page or a wire message)
    keeps its rendering here under a key of its own, so it is made once per record version.
    ``source`` names the node that is authoritative for it (this engine's ``name`` for its own records),
    ``relayed`` says it came from another node and ``verified`` whether it was checked up to the trust
    root; ``stored_at`` and ``expires`` are on the engine's clock.
    """

    __slots__ = ("stored", "renderings", "source", "relayed", "verified", "stored_at", "expires", "tally")

    def __init__(self, stored: StoredRecord, source: str = LOCAL, verified: bool = False, relayed: bool = False,
                 tally: Tally | None = None) -> None:
        self.stored = stored
        self.renderings: dict[Hashable, Any] = {}
        self.source = source
        self.relayed = relayed
        self.verified = verified
        self.stored_at = self.expires = 0.0
        self.tally = tally if tally is not None else Tally("")


class NegativeEntry:
    """An authoritative "no such handle", from ``source``."""

    __slots__ = ("source", "stored_at", "expires", "tally")

    def __init__(self, source: str = LOCAL, tally: Tally | None = None) -> None:
        self.source = source
        self.stored_at = self.expires = 0.0
        self.tally = tally if tally is not None else Tally("")


class _NotFound:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_FOUND"


NOT_FOUND = _NotFound()


@dataclass(slots=True)
class Found:
    """An answer and how it was obtained (``HIT``, ``URI_MISS``, ``STALE`` (an expired entry, refreshed),
    ``STALE_SERVED`` (the refresh failed: ``failure`` says why), ``BYPASS`` (cache off))."""

    entry: CachedRecord | NegativeEntry
    how: str
    failure: IdresError | None = None

    @property
    def record(self) -> CachedRecord | None:
        return self.entry if isinstance(self.entry, CachedRecord) else None


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
        refresh_interval: float = 30.0,
        name: str = LOCAL,
        statistics: Statistics | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.name = name
        self.statistics = statistics if statistics is not None else Statistics()
        self.authority = authority
        self.policy = policy
        self.configured = enabled
        self.enabled = enabled
        self.clock = clock
        self._wall = wall_clock
        self.positive: TtlLru[str, CachedRecord] = TtlLru(max_entries, max_bytes, clock, keep_expired)
        self.negative: TtlLru[str, NegativeEntry] = TtlLru(negative_max_entries, None, clock)
        self._failed: TtlLru[str, IdresError] = TtlLru(FAILED_REFRESHES, None, clock)
        self._refresh_interval = refresh_interval
        self._flights: SingleFlight[str, CachedRecord | NegativeEntry] = SingleFlight()
        self.forwarder: Any = None  # resolution.forwarding.Forwarder, when other nodes can be asked
        self.hits = 0
        self.misses = 0
        self.stale_answers = 0

    def peek(self, key: str) -> CachedRecord | NegativeEntry | None:
        """The fresh cache entry for a comparison key, if any. Synchronous: the hot path."""
        entry = self.positive.get(key)
        if entry is None:
            entry = self.negative.get(key)  # type: ignore[assignment]
            if entry is None:
                return None
        self.hits += 1
        return entry

    def lookup(self, key: str) -> CachedRecord | _NotFound | None:
        """The cached answer for a comparison key: the record, NOT_FOUND, or None when not cached."""
        entry = self.peek(key)
        return NOT_FOUND if isinstance(entry, NegativeEntry) else entry

    def expired(self, key: str) -> tuple[CachedRecord, float] | None:
        """A positive entry kept past its TTL, and how many seconds ago it expired."""
        return self.positive.get_expired(key)

    async def resolve(self, handle: Handle, via: tuple[str, ...] = ()) -> CachedRecord | None:
        """The record of a handle (None if the authority has none); PrefixNotHomed when nobody known serves it."""
        return (await self.answer(handle, via)).record

    async def answer(self, handle: Handle, via: tuple[str, ...] = ()) -> Found:
        """The answer for a handle, and how it was obtained."""
        entry = self.peek(handle.key)
        if entry is not None:
            return Found(entry, HIT)
        authority = self.authority.snapshot.answer_for(handle)
        if isinstance(authority, Local):
            return await self._load(handle, self._local_loader(handle), stale_on=_DATABASE_FAILURES, remember=False)
        if self.forwarder is None or (not isinstance(authority, Delegated) and not self.forwarder.root_urls):
            raise PrefixNotHomed(handle=handle.text)
        self.forwarder.upstream.check_path(via)  # a loop is refused before it joins a load it may be part of
        delegation = authority if isinstance(authority, Delegated) else None
        return await self._load(handle, self._upstream_loader(handle, delegation, via), stale_on=_UPSTREAM_FAILURES, remember=True)

    def _local_loader(self, handle: Handle) -> Callable[[], Any]:
        async def load() -> CachedRecord | NegativeEntry:
            stored = await self.source.get(handle.key)
            tally = self.statistics.tally(handle)
            return CachedRecord(stored, self.name, tally=tally) if stored is not None else NegativeEntry(self.name, tally)

        return load

    def _upstream_loader(self, handle: Handle, delegation: Delegated | None, via: tuple[str, ...]) -> Callable[[], Any]:
        async def load() -> CachedRecord | NegativeEntry:
            answered = await self.forwarder.fetch(handle, delegation, via)
            tally = self.statistics.tally(handle)
            if answered.record is None:
                return NegativeEntry(answered.node, tally)
            return CachedRecord(StoredRecord.from_record(answered.record), answered.node, answered.verified, relayed=True,
                                tally=tally)

        return load

    async def _load(self, handle: Handle, load: Callable[[], Any], *, stale_on: tuple[type[IdresError], ...],
                    remember: bool) -> Found:
        """Load a miss; when that fails as ``stale_on`` says and an expired entry is kept, serve it stale
        (``remember``: and do not try again for the refresh interval)."""
        key = handle.key
        self.misses += 1
        kept = self.positive.get_expired(key)
        if kept is not None and remember and self._failed.get(key) is not None:
            return self._stale(kept[0], self._failed.get(key))
        try:
            entry, _fresh = await self._flights.do(key, load, lambda e: self._keep(key, e))
        except stale_on as failure:
            if kept is None:
                raise
            if remember:
                self._failed.put(key, failure, self._refresh_interval)
            return self._stale(kept[0], failure)
        how = BYPASS if not self.enabled else STALE if kept is not None else URI_MISS
        return Found(entry, how)

    def _stale(self, entry: CachedRecord, failure: IdresError | None) -> Found:
        self.stale_answers += 1
        return Found(entry, STALE_SERVED, failure)

    def _keep(self, key: str, entry: CachedRecord | NegativeEntry) -> None:
        now = self.clock()
        entry.stored_at = entry.expires = now
        if not self.enabled:
            return
        if isinstance(entry, NegativeEntry):
            ttl = self.policy.negative()
            entry.expires = now + ttl
            self.negative.put(key, entry, ttl)
        else:
            ttl = self.policy.positive(entry.stored.cache_ttl(int(self._wall())))
            entry.expires = now + ttl
            self.positive.put(key, entry, ttl, entry.stored.size)

    async def record_of(self, handle: Handle) -> Record | None:
        """The record of a handle under a prefix homed (or mirrored) here, through the cache; None otherwise."""
        if not self.authority.snapshot.answers_locally(handle):
            return None
        entry = await self.resolve(handle)
        return entry.stored.record if entry is not None else None

    async def record_anywhere(self, handle: Handle) -> Record | None:
        """The record of any handle this node can resolve, here or through other nodes."""
        entry = await self.resolve(handle)
        return entry.stored.record if entry is not None else None

    async def chain_values(self, text: str) -> Sequence[HandleValue] | None:
        """The values of a record a signature chain needs (certificates), for verifying other nodes' answers."""
        try:
            handle = Handle.parse(text, max_length=10**4)
        except IdresError:
            return None
        authority = self.authority.snapshot.answer_for(handle)
        if self.forwarder is None:
            return None
        return await self.forwarder.certificate_values(text, authority if isinstance(authority, (*Local, Delegated)) else None)

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
