"""Delegation as data (registry.delegation): reading HS_SITE / HS_SITE.PREFIX / HS_SERV from prefix records."""

from __future__ import annotations

from registry.delegation import (
    SITE,
    SITE_PREFIX,
    Delegation,
    delegation_of,
    delegation_values,
    endpoints,
    without_delegation,
)
from registry.model import Handle, HandleValue, Record
from registry.values import TRANSPORTS, Interface, Server, SiteInfo

NOW = 1_800_000_000


def site(address: str, *interfaces: tuple[str, int]) -> SiteInfo:
    ifaces = tuple(Interface(TRANSPORTS[t], port) for t, port in interfaces)
    return SiteInfo(servers=(Server(1, address, b"", ifaces),))


def record(*values: HandleValue) -> Record:
    return Record(Handle.parse("0.NA/88.101.5"), values)


def test_endpoints_list_servers_in_order_plain_http_before_https():
    two = SiteInfo(servers=(Server(1, "127.0.0.1", b"", (Interface(TRANSPORTS["HTTPS"], 8443), Interface(TRANSPORTS["HTTP"], 8000),
                                                        Interface(TRANSPORTS["TCP"], 2641))),
                            Server(2, "::1", b"", (Interface(TRANSPORTS["HTTP"], 9000),))))
    assert endpoints(two) == ["http://127.0.0.1:8000", "https://127.0.0.1:8443", "http://[::1]:9000"]


def test_written_values_read_back_as_the_same_delegation():
    sites = [site("127.0.0.1", ("HTTP", 8001)), site("127.0.0.2", ("HTTP", 8002))]
    values = delegation_values(sites, NOW)
    assert [(v.index, v.type) for v in values] == [(1, SITE), (2, SITE), (21, SITE_PREFIX), (22, SITE_PREFIX)]
    found = delegation_of("88.101.5", record(*values))
    assert found == Delegation("88.101.5", tuple(sites), tuple(sites))
    assert found.covers_derived and found.for_derived().sites == tuple(sites)
    assert found.describe() == "88.101.5 at 127.0.0.1:8001, 127.0.0.2:8002"
    own_only = delegation_of("88.101.5", record(*delegation_values(sites[:1], NOW, derived=False)))
    assert own_only is not None and not own_only.covers_derived


def test_hs_serv_names_a_service_handle_and_unreadable_values_delegate_nothing():
    serv = HandleValue(3, "HS_SERV", b"88.101/SERVICE")
    broken = HandleValue(1, SITE, b"not a site")
    found = delegation_of("88.101.5", record(serv, broken))
    assert found == Delegation("88.101.5", (), (), "88.101/SERVICE", None)
    assert found.describe() == "88.101.5 (through 88.101/SERVICE)"
    assert delegation_of("88.101.5", record(broken)) is None
    assert delegation_of("88.101.5", record(HandleValue(400, "HS_CERT", b"x.y.z"))) is None


def test_without_delegation_keeps_everything_else():
    cert = HandleValue(400, "HS_CERT", b"x.y.z")
    full = record(cert, *delegation_values([site("127.0.0.1", ("HTTP", 8001))], NOW))
    assert without_delegation(full).values == (cert,)
