"""``idres serve`` with several worker processes: cache coherence across them, graceful shutdown."""

from __future__ import annotations

import asyncio
import base64
import signal
import time
from urllib.parse import quote

import aiohttp
import pytest

from registry.pg import db
from registry.pg.store import Store
from resolver.config import Settings
from resolver.ops.provisioning import create_prefix_admin, home_prefix
from resolver.keys.site import SiteDescription
from tests.nodes import ServeProcess

POLL_INTERVAL = 0.5
# docs/caching.md: a write is served by no worker's cache later than 2 × the poll interval after it
# commits. The margin covers this test's own polling and process scheduling on a loaded machine.
BOUND = 2 * POLL_INTERVAL
MARGIN = 3.0


@pytest.fixture
async def provisioned(dsn):
    pool = await db.create_pool(dsn, max_size=1)
    try:
        store = Store(pool)
        now = int(time.time())
        await home_prefix(store, SiteDescription(Settings.load(env={})), "88.101", now)
        return await create_prefix_admin(store, "88.101", now)
    finally:
        await pool.close()


def auth_header(admin) -> dict[str, str]:
    token = base64.b64encode(f"{quote(str(admin.identity), safe='/')}:{admin.secret}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


async def on_one_connection(base: str, path: str) -> tuple[int, dict]:
    """(worker pid, JSON) of one GET, asked on a new connection whose worker /readyz names first."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
        async with s.get(base + "/readyz") as r:
            pid = (await r.json())["pid"]
        async with s.get(base + path) as r:
            return pid, await r.json()


async def read_by_worker(base: str, path: str, pids: set[int], deadline: float) -> dict[int, str]:
    """The URL value each worker serves, asking on new connections until every worker answered."""
    seen: dict[int, str] = {}
    while set(seen) != pids:
        if time.monotonic() > deadline:
            raise AssertionError(f"only workers {sorted(seen)} of {sorted(pids)} answered")
        pid, body = await on_one_connection(base, path)
        seen[pid] = body["values"][0]["data"]["value"]
    return seen


async def test_a_write_through_one_worker_is_seen_by_the_other_within_the_bound(dsn, tmp_path, provisioned):
    node = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "0", "--workers", "2",
                        env={"IDRES_CACHE_POLL_INTERVAL": str(POLL_INTERVAL)})
    await asyncio.to_thread(node.start)
    try:
        pids = set(node.ready["workerPids"])
        assert len(pids) == 2
        headers = auth_header(provisioned)
        path = "/api/handles/88.101/COHERENT"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as s:
            r = await s.put(node.https + "/api/handles/88.101/COHERENT", json=[{"index": 1, "type": "URL", "data": "v1"}], headers=headers)
            assert r.status == 201
        # every worker now caches v1
        cached = await read_by_worker(node.http, path, pids, time.monotonic() + 60)
        assert set(cached.values()) == {"v1"}
        # write v2 through whichever worker takes the connection
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False, limit=1)) as s:
            writer = (await (await s.get(node.https + "/readyz")).json())["pid"]
            r = await s.put(node.https + path + "?index=1", json=[{"index": 1, "type": "URL", "data": "v2"}], headers=headers)
            assert r.status == 200
        written = time.monotonic()
        # poll each worker until it serves v2; none may keep serving v1 past the bound
        fresh: dict[int, float] = {}
        while set(fresh) != pids:
            assert time.monotonic() - written < BOUND + MARGIN, f"stale after the bound: {fresh} of {pids}"
            for pid, value in (await read_by_worker(node.http, path, pids, time.monotonic() + 30)).items():
                if value == "v2":
                    fresh.setdefault(pid, time.monotonic() - written)
        assert (pids - {writer}) and all(fresh[p] < BOUND + MARGIN for p in pids)
    finally:
        await asyncio.to_thread(node.stop)


async def test_sigterm_lets_in_flight_requests_finish(dsn, tmp_path, provisioned):
    """A PUT held inside its transaction (the test holds the change-log lock) still completes after SIGTERM."""
    node = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "off", "--workers", "1",
                        "--allow-http-auth")
    await asyncio.to_thread(node.start)
    port = int(node.http.rsplit(":", 1)[1])
    async with db.connection(dsn) as blocker:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT pg_advisory_xact_lock(7310021)")
        session = aiohttp.ClientSession()
        put = asyncio.create_task(session.put(node.http + "/api/handles/88.101/SLOW", json=[{"index": 1, "type": "URL", "data": "x"}],
                                              headers=auth_header(provisioned)))
        deadline = time.monotonic() + 30
        while not await blocker.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
            assert time.monotonic() < deadline, "the PUT never reached the change log"
            await asyncio.sleep(0.02)
        stopping = asyncio.create_task(asyncio.to_thread(node.stop, signal.SIGTERM))
        while not _listening_closed(port):
            assert time.monotonic() < deadline, "the node did not stop accepting connections"
            await asyncio.sleep(0.05)
        assert not put.done()
        await transaction.commit()
    response = await asyncio.wait_for(put, 30)
    assert response.status == 201, await response.text()
    await session.close()
    await stopping
    assert node.proc.returncode == 0
    async with db.connection(dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM handles WHERE handle = '88.101/SLOW'") == 1


def _listening_closed(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) != 0
