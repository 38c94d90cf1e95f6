"""Loading what other nodes serve: delegated prefixes from their sites, unknown ones through the root.

The engine hands a miss here when the authority snapshot names a delegation (or knows nothing and a
root node is configured). ``Forwarder`` turns the delegation into URLs — following ``HS_SERV``
indirection — asks ``Upstream``, and turns the answer into a cache entry. It also fetches, for the
verification of such answers, the records that hold the certificates of a chain; those are cached on
their own, without being verified themselves (the chain's signatures are what is checked).
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable, Sequence

from registry.delegation import Delegation, endpoints, sites_of
from registry.errors import IdresError, PrefixNotHomed, UpstreamUnavailable
from registry.model import Handle, HandleValue, Record
from registry.records import StoredRecord

from ..core.authority import Delegated, Homed, Local, Mirrored
from .cache import SingleFlight, TtlLru, TtlPolicy
from .upstream import Answered, Upstream

MAX_SERVICE_DEPTH = 4
CERTIFICATE_RECORDS = 10_000

RecordLookup = Callable[[Handle], Awaitable["Record | None"]]


class Forwarder:
    def __init__(
        self,
        upstream: Upstream,
        *,
        root_urls: Sequence[str],
        policy: TtlPolicy,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.upstream = upstream
        self.root_urls = tuple(root_urls)
        self._policy = policy
        self._wall = wall_clock
        self._certificates: TtlLru[str, Record | None] = TtlLru(CERTIFICATE_RECORDS, None, clock)
        self._flights: SingleFlight[str, Record | None] = SingleFlight()
        self.local: RecordLookup | None = None  # records this node serves (set by the engine)
        self.anywhere: RecordLookup | None = None  # any record, through the engine (for HS_SERV)

    async def fetch(self, handle: Handle, answer: Delegated | None, via: tuple[str, ...]) -> Answered:
        """The answer of the nodes serving ``answer``'s prefix (None: of the root) for ``handle``."""
        if answer is None:
            return await self.upstream.ask(handle, self.root_urls, via, serving=f"the root ({', '.join(self.root_urls)})")
        urls = await self.urls(answer, depth=0)
        return await self.upstream.ask(handle, urls, via, serving=answer.describe())

    async def urls(self, delegation: Delegation, depth: int) -> list[str]:
        """The REST base URLs of the delegate, in order; HS_SERV names a handle whose HS_SITE values tell."""
        urls = [url for site in delegation.sites for url in endpoints(site)]
        if urls or delegation.service is None:
            return urls
        if depth >= MAX_SERVICE_DEPTH or self.anywhere is None:
            raise UpstreamUnavailable(f"the HS_SERV indirection of {delegation.prefix} goes deeper than {MAX_SERVICE_DEPTH} records")
        service = await self.anywhere(Handle.parse(delegation.service, max_length=10**4))
        if service is None:
            raise UpstreamUnavailable(f"{delegation.prefix} is served by {delegation.service}, which does not exist")
        return [url for site in sites_of(service.values) for url in endpoints(site)]

    def entry_for(self, answered: Answered) -> StoredRecord | None:
        return StoredRecord.from_record(answered.record) if answered.record is not None else None

    async def certificate_values(self, text: str, authority: Homed | Mirrored | Delegated | None) -> Sequence[HandleValue] | None:
        """The values of a record a chain needs: this node's own, or another node's, cached, unverified."""
        try:
            handle = Handle.parse(text, max_length=10**4)
        except IdresError:
            return None
        if isinstance(authority, Local):
            record = await self.local(handle) if self.local is not None else None
            return record.values if record is not None else None
        if authority is None and not self.root_urls:
            return None
        record = await self._certificate_record(handle, authority)
        return record.values if record is not None else None

    async def _certificate_record(self, handle: Handle, authority: Delegated | None) -> Record | None:
        cached = self._certificates.get(handle.key)
        if cached is not None:
            return cached

        async def load() -> Record | None:
            try:
                answered = await self._fetch_unverified(handle, authority)
            except (IdresError, PrefixNotHomed):
                return None
            return answered.record

        def keep(record: Record | None) -> None:
            if record is not None:
                self._certificates.put(handle.key, record, self._policy.positive(record.cache_ttl(int(self._wall()))))

        record, _ = await self._flights.do(handle.key, load, keep)
        return record

    async def _fetch_unverified(self, handle: Handle, authority: Delegated | None) -> Answered:
        if authority is None:
            return await self.upstream.ask(handle, self.root_urls, (), serving="the root", verify=False)
        urls = await self.urls(authority, depth=0)
        return await self.upstream.ask(handle, urls, (), serving=authority.describe(), verify=False)
