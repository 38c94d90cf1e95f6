"""A national deployment on one machine: a root, two sector nodes delegated from it (appliances 88.100,
machinery 88.101) and an enterprise node (88.101.5) delegated from machinery, each an ``idres serve``
with its own database and keys certified down from the root. Every node verifies what it relays
against the root key."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest

from registry.pg import db
from tests.conftest import TEMPLATE, with_database
from tests.tiers import Tier, certify, delegate, make_root, run

DEADLINE = 30.0
_names = itertools.count(1)


def url_value(url: str, ttl: int = 86400) -> list[dict]:
    return [{"index": 1, "type": "URL", "data": url, "ttl": ttl}]


async def databases(pg_root: str, count: int) -> list[str]:
    names = [f"tier{next(_names)}" for _ in range(count)]
    async with db.connection(pg_root) as conn:
        for name in names:
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return [with_database(pg_root, name) for name in names]


@pytest.fixture(scope="module")
async def national(pg_root, template_dsn):
    """The four nodes, running, with delegations written by the parents and records at each authority."""
    tmp = Path(tempfile.mkdtemp(prefix="idres-tiers-"))
    root, appliances, machinery, enterprise = [Tier(n, d, tmp) for n, d in zip(
        ("root", "appliances", "machinery", "enterprise"), await databases(pg_root, 4))]
    root_key = await make_root(root, "88")
    await certify(root, appliances, "88.100")
    await certify(root, machinery, "88.101")
    await certify(machinery, enterprise, "88.101.5")
    trust = ("--trust-root", str(root_key))
    try:
        await asyncio.to_thread(root.serve, *trust)
        for tier in (appliances, machinery, enterprise):
            await asyncio.to_thread(tier.serve, *trust, "--root-node", root.http)
        await delegate(root, "88.100", appliances)
        await delegate(root, "88.101", machinery)
        await delegate(machinery, "88.101.5", enterprise)
        async with aiohttp.ClientSession() as session:
            assert await appliances.put(session, "88.100/FRIDGE-1", url_value("https://a.example/fridge-1")) == 201
            assert await machinery.put(session, "88.101/LATHE-1", url_value("https://m.example/lathe-1")) == 201
            assert await enterprise.put(session, "88.101.5/SN-1", url_value("https://e.example/sn-1")) == 201
            assert await enterprise.put(session, "88.101.5/SHORT", url_value("https://e.example/v1", ttl=1)) == 201
        yield root, appliances, machinery, enterprise
    finally:
        for tier in (enterprise, machinery, appliances, root):
            tier.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def get(session: aiohttp.ClientSession, node: Tier, handle: str, **params) -> tuple[int, dict, aiohttp.typedefs.LooseHeaders]:
    async with session.get(f"{node.http}/api/handles/{handle}", params=params) as r:
        return r.status, await r.json(), r.headers


async def until(check, what: str):
    """Poll ``check()`` until it returns something true; its result."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


async def test_the_root_answers_for_every_tier_with_the_authoritative_verified_record(national):
    root, appliances, machinery, enterprise = national
    async with aiohttp.ClientSession() as s:
        for handle, authority, url in (("88.100/FRIDGE-1", appliances, "https://a.example/fridge-1"),
                                       ("88.101/LATHE-1", machinery, "https://m.example/lathe-1"),
                                       ("88.101.5/SN-1", enterprise, "https://e.example/sn-1")):
            status, body, headers = await get(s, root, handle)
            assert status == 200 and body["responseCode"] == 1 and body["handle"] == handle
            assert body["values"][0]["data"]["value"] == url
            assert [v["type"] for v in body["values"]] == ["URL", "HS_SIGNATURE"]  # the authority's own signature, relayed
            assert headers["Idres-Verification"] == "verified"
            authority_name = authority.http.removeprefix("http://")
            assert f'detail="{authority_name}"' in headers["Cache-Status"], headers["Cache-Status"]
            again = await get(s, root, handle)
            assert again[1] == body and again[2]["Cache-Status"].startswith("idres; hit")
            direct = await get(s, authority, handle)
            assert direct[1] == body  # exactly what the authority serves


async def test_any_tier_resolves_what_another_serves_through_the_root(national):
    root, appliances, machinery, enterprise = national
    async with aiohttp.ClientSession() as s:
        status, body, headers = await get(s, enterprise, "88.100/FRIDGE-1")  # up to the root, down to appliances
        assert (status, body["values"][0]["data"]["value"]) == (200, "https://a.example/fridge-1")
        assert headers["Idres-Verification"] == "verified"
        status, body, _ = await get(s, appliances, "88.101.5/SN-1")  # root, machinery, enterprise
        assert (status, body["values"][0]["data"]["value"]) == (200, "https://e.example/sn-1")


async def test_not_found_at_the_authority_is_cached_negatively(national):
    root, _, _, enterprise = national
    async with aiohttp.ClientSession() as s:
        status, body, headers = await get(s, root, "88.101.5/NO-SUCH")
        assert (status, body) == (404, {"responseCode": 100, "handle": "88.101.5/NO-SUCH"})
        assert "fwd=uri-miss" in headers["Cache-Status"]
        status, body, headers = await get(s, root, "88.101.5/no-such")
        assert (status, body) == (404, {"responseCode": 100, "handle": "88.101.5/no-such"})
        assert headers["Cache-Status"].startswith("idres; hit")
        assert int(headers["Cache-Control"].removeprefix("max-age=")) <= 60


async def test_a_change_at_the_authority_shows_at_the_root_once_its_ttl_has_passed(national):
    root, _, _, enterprise = national
    async with aiohttp.ClientSession() as s:
        status, body, _ = await get(s, root, "88.101.5/SHORT")
        assert body["values"][0]["data"]["value"] == "https://e.example/v1"
        assert await enterprise.put(s, "88.101.5/SHORT", url_value("https://e.example/v2", ttl=1)) == 200

        async def changed():
            _, now, _ = await get(s, root, "88.101.5/SHORT")
            return now["values"][0]["data"]["value"] == "https://e.example/v2"

        await until(changed, "the new version reached the root")


async def test_prefix_records_of_delegated_prefixes_come_from_the_parent_and_the_delegate(national):
    root, _, machinery, enterprise = national
    async with aiohttp.ClientSession() as s:
        status, body, headers = await get(s, root, "0.NA/88.101.5")  # held by machinery, which delegates it
        assert status == 200 and "HS_SITE" in {v["type"] for v in body["values"]}
        assert f'detail="{machinery.http.removeprefix("http://")}"' in headers["Cache-Status"]
        status, body, _ = await get(s, root, "0.NA/88.101")  # the root's own delegation record
        sites = [v["data"]["value"] for v in body["values"] if v["type"] == "HS_SITE"]
        assert sites and sites[0]["servers"][0]["interfaces"][0]["port"] == int(machinery.http.rsplit(":", 1)[1])


async def test_referrals_name_the_delegate_instead_of_resolving(national):
    root, _, machinery, _ = national
    async with aiohttp.ClientSession() as s:
        status, body, _ = await get(s, root, "88.101/LATHE-2", doNotRefer="false")
        assert (status, body["responseCode"]) == (300, 303)
        sites = [v for v in body["values"] if v["type"] in ("HS_SITE", "HS_SITE.PREFIX")]
        assert sites and all(v["data"]["format"] == "site" for v in sites)
        port = int(machinery.http.rsplit(":", 1)[1])
        assert {i["port"] for v in sites for srv in v["data"]["value"]["servers"] for i in srv["interfaces"]} == {port}


async def test_writes_for_a_delegated_prefix_name_the_node_that_serves_it(national):
    root, _, machinery, _ = national
    admin = await root.admin("88")
    from tests.nodes import basic

    async with aiohttp.ClientSession() as s:
        async with s.put(f"{root.http}/api/handles/88.101/NEW", json=url_value("https://x"),
                         headers=basic(admin["user"], admin["password"])) as r:
            body = await r.json()
    assert (r.status, body["responseCode"]) == (400, 301)
    assert machinery.http.removeprefix("http://") in body["message"]


async def test_listing_shows_the_delegations_a_parent_keeps(national):
    root, appliances, machinery, _ = national
    listed = await run("prefix", "list", *root.opts())
    assert listed["prefixes"] == ["0.0", "88"]
    assert set(listed["delegated"]) == {"88.100", "88.101"}
    assert machinery.http.removeprefix("http://") in listed["delegated"]["88.101"]


async def test_the_browser_front_resolves_delegated_handles_and_verifies_their_signatures(national):
    root, _, machinery, enterprise = national
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{root.http}/88.101.5/SN-1", allow_redirects=False) as r:  # root → machinery → enterprise
            assert (r.status, r.headers["Location"]) == (302, "https://e.example/sn-1")
        for node in (root, machinery, enterprise):  # relayed and verified, or the node's own record checked up to the root
            async with s.get(f"{node.http}/88.101.5/SN-1?noredirect") as r:
                page = await r.text()
            assert r.status == 200 and 'class="status verified"' in page, page
            assert "verified up to this node&#x27;s trust root" in page
