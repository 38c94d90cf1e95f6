"""Resolution through delegates that fail: down, slow, looping, or answering what must not be relayed.

The roots are real ``idres serve`` nodes. The misbehaving delegate is a small HTTP server of this test:
it publishes a site like a node does, then answers each handle as its suffix says (garbage, the record
of another handle, a bad signature, slowly…), and counts what it was asked.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import tempfile
import threading
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.resolver.resolution.test_tiers import databases, get, until, url_value
from tests.tiers import Tier, delegate, home, make_root, run

FAST = {"IDRES_UPSTREAM_TIMEOUT": "1", "IDRES_UPSTREAM_DEADLINE": "2", "IDRES_STALE_REFRESH_INTERVAL": "0.2"}


class Rogue:
    """A delegate that answers as the handle's suffix says; ``asked`` counts requests per handle."""

    def __init__(self) -> None:
        self.asked: collections.Counter[str] = collections.Counter()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> "Rogue":
        app = web.Application()
        app.router.add_get("/api/site", self.site)
        app.router.add_get("/api/handles/{handle:.*}", self.answer)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def site(self, request: web.Request) -> web.Response:
        interfaces = [{"query": True, "admin": False, "protocol": "HTTP", "port": self.port}]
        return web.json_response({"responseCode": 1, "site": {"version": 1, "protocolVersion": "2.10", "serialNumber": 1,
                                  "primarySite": True, "multiPrimary": False, "attributes": [],
                                  "servers": [{"serverId": 1, "address": "127.0.0.1", "interfaces": interfaces}]}})

    async def answer(self, request: web.Request) -> web.StreamResponse:
        handle = request.match_info["handle"]
        self.asked[handle] += 1
        kind = handle.rsplit("/", 1)[-1].split("-")[0]
        record = {"responseCode": 1, "handle": handle, "values": url_value("https://rogue.example/" + handle)}
        if kind == "SLOW":
            await asyncio.sleep(60)
        if kind == "GARBAGE":
            return web.Response(text="<html>not a handle answer</html>", content_type="text/html")
        if kind == "ARRAY":
            return web.json_response([1, 2, 3])
        if kind == "OTHER":
            return web.json_response({**record, "handle": "66.1/SOMETHING-ELSE"})
        if kind == "BADSIG":
            values = record["values"] + [{"index": 400, "type": "HS_SIGNATURE", "data": "eyJhbGciOiJFZERTQSJ9.e30.AAAA"}]
            return web.json_response({**record, "values": values})
        if kind == "COUNT":
            await asyncio.sleep(0.3)  # long enough for the clients to be waiting
        return web.json_response(record)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture(scope="module")
def rogue():
    """The rogue on an event loop of its own thread, so that this test's clients never slow its answers."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(Rogue().start(), loop).result(30)
    yield server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
    asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


async def _cancel_the_rest() -> None:
    """Requests still held (the slow ones) end with their loop."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


@pytest.fixture(scope="module")
async def tmp_dir():
    path = Path(tempfile.mkdtemp(prefix="idres-faults-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
async def verifying_root(pg_root, template_dsn, rogue, tmp_dir):
    """A root that verifies against its own key, delegating 66.1 to the rogue."""
    (dsn,) = await databases(pg_root, 1)
    root = Tier("verifying", dsn, tmp_dir)
    key = await make_root(root, "66")
    await asyncio.to_thread(root.serve, "--trust-root", str(key), env=FAST)
    await run("prefix", "delegate", "66.1", "--to", rogue.http, *root.opts())
    yield root
    root.stop()


@pytest.fixture(scope="module")
async def plain_root(pg_root, template_dsn, rogue, tmp_dir):
    """A root without a trust root, delegating 66.1 to the rogue: it relays unverified."""
    (dsn,) = await databases(pg_root, 1)
    root = Tier("plain", dsn, tmp_dir)
    await home(root, "66")
    await asyncio.to_thread(root.serve, env=FAST)
    await run("prefix", "delegate", "66.1", "--to", rogue.http, *root.opts())
    yield root
    root.stop()


@pytest.mark.parametrize(("suffix", "said"), [
    ("GARBAGE-1", "not JSON"),
    ("ARRAY-1", "not an object"),
    ("OTHER-1", "instead of 66.1/OTHER-1"),
    ("BADSIG-1", "does not verify"),
])
async def test_an_answer_that_cannot_be_relayed_is_refused_and_not_cached(verifying_root, rogue, suffix, said):
    handle = f"66.1/{suffix}"
    async with aiohttp.ClientSession() as s:
        for attempt in (1, 2):
            status, body, headers = await get(s, verifying_root, handle)
            assert (status, body["responseCode"], body["handle"]) == (502, 2, handle)
            assert said in body["message"] and f"127.0.0.1:{rogue.port}" in body["message"]
            assert "fwd=uri-miss" in headers["Cache-Status"]
            assert rogue.asked[handle] == attempt  # nothing was cached: asked again


async def test_an_unsigned_record_is_refused_by_a_verifying_node_and_relayed_unverified_by_another(verifying_root, plain_root):
    async with aiohttp.ClientSession() as s:
        status, body, _ = await get(s, verifying_root, "66.1/PLAIN-1")
        assert status == 502 and "carries no HS_SIGNATURE" in body["message"]
        status, body, headers = await get(s, plain_root, "66.1/PLAIN-1")
        assert status == 200 and body["values"][0]["data"]["value"] == "https://rogue.example/66.1/PLAIN-1"
        assert headers["Idres-Verification"] == "unverified"


async def test_a_slow_delegate_does_not_hold_the_client_past_the_deadline(plain_root, rogue):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
        status, body, _ = await get(s, plain_root, "66.1/SLOW-1")
    assert (status, body["responseCode"]) == (504, 301)
    assert "timed out" in body["message"] or "deadline" in body["message"]
    assert f"127.0.0.1:{rogue.port}" in body["message"]


async def test_a_thousand_clients_asking_one_cold_key_make_one_upstream_request(plain_root, rogue):
    handle = "66.1/COUNT-1"
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as s:

        async def one() -> tuple[int, str]:
            async with s.get(f"{plain_root.http}/api/handles/{handle}") as r:
                body = await r.json()
                return r.status, body["values"][0]["data"]["value"] if r.status == 200 else str(body)

        answers = await asyncio.gather(*(one() for _ in range(1000)))
    assert set(answers) == {(200, "https://rogue.example/66.1/COUNT-1")}
    assert rogue.asked[handle] == 1


async def test_a_loop_between_two_nodes_is_refused_at_once_naming_it(pg_root, template_dsn, tmp_dir):
    a, b = [Tier(n, d, tmp_dir) for n, d in zip(("loop-a", "loop-b"), await databases(pg_root, 2))]
    try:
        for tier in (a, b):
            await home(tier, "77")
            await asyncio.to_thread(tier.serve, env=FAST)
        await delegate(a, "77.1", b)
        await delegate(b, "77.1", a)
        async with aiohttp.ClientSession() as s:
            status, body, _ = await get(s, a, "77.1/X")
        assert (status, body["responseCode"]) == (508, 6)
        name_a, name_b = a.http.removeprefix("http://"), b.http.removeprefix("http://")
        assert f"{name_a} → {name_b} → {name_a}" in body["message"]
    finally:
        a.stop()
        b.stop()


async def test_a_delegate_that_goes_down_is_served_stale_then_a_504_past_the_window(pg_root, template_dsn, tmp_dir):
    parent, child = [Tier(n, d, tmp_dir) for n, d in zip(("stale-parent", "stale-child"), await databases(pg_root, 2))]
    try:
        await home(parent, "55")
        await home(child, "55.1")
        await asyncio.to_thread(parent.serve, env={**FAST, "IDRES_STALE_WINDOW": "3"})
        await asyncio.to_thread(child.serve)
        await delegate(parent, "55.1", child)
        async with aiohttp.ClientSession() as s:
            assert await child.put(s, "55.1/P", url_value("https://c.example/p", ttl=1)) == 201
            status, body, _ = await get(s, parent, "55.1/P")
            assert status == 200
            child.stop()

            async def stale():
                status, now, headers = await get(s, parent, "55.1/P")
                return status == 200 and "fwd=stale" in headers["Cache-Status"] and (now, headers)

            served, headers = await until(stale, "the parent served the record stale")
            assert served == body and "ttl=-" in headers["Cache-Status"]

            async def gone():
                status, now, _ = await get(s, parent, "55.1/P")
                return status == 504 and now

            refused = await until(gone, "the stale window closed")
        assert refused["responseCode"] == 301 and child.http.removeprefix("http://") in refused["message"]
    finally:
        parent.stop()
        child.stop()
