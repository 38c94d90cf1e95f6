"""Delegation is data: the values of ``0.NA/<prefix>`` that say which node serves a prefix. Pure.

As in the Handle System, ``HS_SITE`` values on a prefix record describe the site (servers, addresses,
ports, public keys) that serves the prefix's handles, and ``HS_SITE.PREFIX`` values the site that
serves the prefixes derived from it (``88.101.5`` under ``88.101``). ``HS_SERV`` and ``HS_SERV.PREFIX``
name, instead, a handle whose ``HS_SITE`` values do so (indirection).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from .errors import IdresError
from .model import HandleValue, Record
from .values import TRANSPORTS, SiteInfo

SITE = "HS_SITE"
SITE_PREFIX = "HS_SITE.PREFIX"
SERV = "HS_SERV"
SERV_PREFIX = "HS_SERV.PREFIX"
DELEGATION_TYPES = frozenset({SITE, SITE_PREFIX, SERV, SERV_PREFIX})
SITE_INDEX = 1
SITE_PREFIX_INDEX = 21
_SCHEMES = ((TRANSPORTS["HTTP"], "http"), (TRANSPORTS["HTTPS"], "https"))


@dataclass(frozen=True, slots=True)
class Delegation:
    """Who serves a prefix that another node answers for.

    ``sites`` serve the prefix's own handles; ``prefix_sites`` serve the prefixes derived from it.
    ``service`` and ``prefix_service`` name handles whose HS_SITE values do, where the record points
    there instead (HS_SERV, HS_SERV.PREFIX).
    """

    prefix: str
    sites: tuple[SiteInfo, ...] = ()
    prefix_sites: tuple[SiteInfo, ...] = ()
    service: str | None = None
    prefix_service: str | None = None

    @property
    def covers_derived(self) -> bool:
        return bool(self.prefix_sites or self.prefix_service)

    def for_derived(self) -> "Delegation":
        """The delegation of a prefix derived from this one: its HS_SITE.PREFIX sites serve it."""
        return replace(self, sites=self.prefix_sites, service=self.prefix_service)

    def describe(self) -> str:
        """The servers, as a person reads them: ``88.101 at 127.0.0.1:8001``."""
        places = [endpoint.split("://", 1)[1] for site in self.sites for endpoint in endpoints(site)]
        if places:
            return f"{self.prefix} at {', '.join(dict.fromkeys(places))}"
        return f"{self.prefix} (through {self.service})" if self.service else self.prefix


def delegation_of(prefix: str, record: Record) -> Delegation | None:
    """The delegation a prefix record describes; None when it names no other site. Unreadable values
    are passed over: they delegate nothing."""
    sites, prefix_sites = _sites(record.of_type(SITE)), _sites(record.of_type(SITE_PREFIX))
    service, prefix_service = _handle_of(record.of_type(SERV)), _handle_of(record.of_type(SERV_PREFIX))
    if not (sites or prefix_sites or service or prefix_service):
        return None
    return Delegation(prefix, sites, prefix_sites, service, prefix_service)


def sites_of(values: Iterable[HandleValue]) -> tuple[SiteInfo, ...]:
    """The HS_SITE values among ``values`` (a service handle's record), in index order."""
    return _sites([v for v in values if v.type_key == SITE])


def _sites(values: Iterable[HandleValue]) -> tuple[SiteInfo, ...]:
    found = []
    for value in sorted(values, key=lambda v: v.index):
        try:
            found.append(SiteInfo.from_bytes(value.data))
        except IdresError:
            continue
    return tuple(found)


def _handle_of(values: list[HandleValue]) -> str | None:
    for value in sorted(values, key=lambda v: v.index):
        try:
            text = value.data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "/" in text:
            return text
    return None


def endpoints(site: SiteInfo) -> list[str]:
    """Base URLs of the site's REST interfaces, servers in order, plain HTTP before HTTPS."""
    urls = []
    for server in site.servers:
        host = f"[{server.address}]" if ":" in server.address else server.address
        for transport, scheme in _SCHEMES:
            urls += [f"{scheme}://{host}:{i.port}" for i in server.interfaces if i.transport == transport and i.query]
    return urls


def delegation_values(sites: Iterable[SiteInfo], now: int, *, derived: bool = True) -> list[HandleValue]:
    """HS_SITE values for ``sites`` (indexes 1, 2, …) and, with ``derived``, the same as HS_SITE.PREFIX
    (21, 22, …): the node serves the prefix and the prefixes derived from it."""
    sites = list(sites)
    values = [HandleValue(SITE_INDEX + n, SITE, s.to_bytes(), timestamp=now) for n, s in enumerate(sites)]
    if derived:
        values += [HandleValue(SITE_PREFIX_INDEX + n, SITE_PREFIX, s.to_bytes(), timestamp=now) for n, s in enumerate(sites)]
    return values


def without_delegation(record: Record) -> Record:
    """The record without its delegation values (certificates and everything else stay)."""
    return record.with_values(v for v in record.values if v.type_key not in DELEGATION_TYPES)
