"""What a node of two workers reports of itself: /metrics adding up whichever worker answers, and the
per-prefix statistics of /api/stats matching the requests made."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.nodes import ServeProcess, basic, idres, pinned

DEADLINE = 30.0
HITS, QUERIES, MISSING = 40, 7, 11  # per worker: GETs of a record, GETs with ?type=, GETs of a missing handle


async def metric_samples(session: aiohttp.ClientSession, url: str) -> list:
    async with session.get(url + "/metrics") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def handle_gets(samples: list) -> dict[str, float]:
    """GETs of /api/handles/… by status, hit path and the rest added up."""
    out: dict[str, float] = {}
    for s in samples:
        if s.name == "idres_http_requests_total" and s.labels["route"].startswith("/api/handles/") and s.labels["method"] == "GET":
            out[s.labels["status"]] = out.get(s.labels["status"], 0) + s.value
    return out


async def until(check, what: str):
    """Poll ``check()`` (a coroutine returning a value or None) until it returns a value."""
    deadline = time.monotonic() + DEADLINE
    while True:
        found, last = await check()
        if found:
            return last
        assert time.monotonic() < deadline, f"{what}: still {last}"
        await asyncio.sleep(0.2)


async def test_metrics_and_statistics_add_up_across_two_workers(dsn, tmp_path):
    await asyncio.to_thread(idres, "prefix", "home", "88.101", "--dsn", dsn, "--data-dir", str(tmp_path))
    made = await asyncio.to_thread(idres, "admin", "create", "--prefix", "88.101", "--dsn", dsn, "--data-dir", str(tmp_path), "--json")
    admin = json.loads(made.stdout.strip().splitlines()[-1])
    auth = basic(admin["user"], admin["password"])
    node = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "off", "--workers", "2",
                        "--allow-http-auth", env={"IDRES_STATISTICS_FLUSH_INTERVAL": "0.5"})
    await asyncio.to_thread(node.start)
    sessions: list[aiohttp.ClientSession] = []
    try:
        sessions = await pinned(node.http, 2)
        url = node.http + "/api/handles/88.101/"
        for n in range(3):
            async with sessions[0].put(url + f"M{n}", json=[{"index": 1, "type": "URL", "data": "https://m"}], headers=auth) as r:
                assert r.status == 201
        for session in sessions:
            for path, times, status in (("M0", HITS, 200), ("M0?type=URL", QUERIES, 200), ("NOPE", MISSING, 404)):
                for _ in range(times):
                    async with session.get(url + path) as r:
                        assert r.status == status

        expected = {"200": 2 * (HITS + QUERIES), "404": 2 * MISSING}

        async def counted():
            gets = handle_gets(await metric_samples(sessions[0], node.http))
            return gets == expected or sum(gets.values()) > sum(expected.values()), gets

        assert await until(counted, "GETs in /metrics") == expected
        other = await metric_samples(sessions[1], node.http)  # the other worker reads the same shared figures
        assert handle_gets(other) == expected
        hits = [s.value for s in other if s.name == "idres_cache_total" and s.labels["event"] == "hits"]
        assert hits and hits[0] >= 2 * (HITS - 1 + MISSING - 1)

        async def reported():
            async with sessions[1].get(node.http + "/api/stats", params={"prefix": "88.101"}, headers=auth) as r:
                assert r.status == 200
                total = (await r.json())["total"]
            wanted = {"resolutions": 2 * (HITS + QUERIES), "notFound": 2 * MISSING, "registrations": 3}
            return total == wanted or any(total[k] > wanted[k] for k in wanted), total

        assert await until(reported, "statistics of 88.101") == {
            "resolutions": 2 * (HITS + QUERIES), "notFound": 2 * MISSING, "registrations": 3}
        async with sessions[0].get(node.http + "/api/stats", params={"prefix": "88.101"}) as r:
            assert r.status == 401  # a prefix's statistics are its admins'
    finally:
        for session in sessions:
            await session.close()
        node.stop()
