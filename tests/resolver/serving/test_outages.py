"""A node through database outages, under a mixed load: the database cut by a proxy for thirty seconds,
and the embedded postmaster killed with SIGKILL.

Clients keep reading records every worker has cached, reading records nobody cached, and creating
handles. What they must get: cached reads answered (at least 99 %), misses and writes refused with a
JSON 503 (responseCode 3, Retry-After), never a 500; afterwards every acknowledged write is there and
no refused one is (a write whose connection was lost during its commit is told it may have been
applied, and may be either); the node serves writes again by itself; and the log stays short.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from registry.pg import db
from tests.nodes import ServeProcess, basic, idres, pinned
from tests.pgproxy import PgProxy

CACHED = 50  # records every worker has cached
SESSIONS_PER_WORKER = 3
RECOVERY_DEADLINE = 60.0


@dataclass
class Tally:
    cached: collections.Counter = field(default_factory=collections.Counter)
    missed: collections.Counter = field(default_factory=collections.Counter)
    writes: collections.Counter = field(default_factory=collections.Counter)
    acknowledged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    in_doubt: list[str] = field(default_factory=list)  # refused as the commit's connection was lost: either outcome is right
    bad: list[str] = field(default_factory=list)  # answers of the wrong shape: not JSON, no responseCode, no Retry-After


async def admin_of(dsn: str, data_dir: Path) -> dict:
    await asyncio.to_thread(idres, "prefix", "home", "88.101", "--dsn", dsn, "--data-dir", str(data_dir))
    result = await asyncio.to_thread(idres, "admin", "create", "--prefix", "88.101", "--dsn", dsn, "--data-dir", str(data_dir), "--json")
    return json.loads(result.stdout.strip().splitlines()[-1])


async def seed_and_warm(url: str, auth: dict, sessions: list[aiohttp.ClientSession]) -> None:
    async with aiohttp.ClientSession() as s:
        for n in range(CACHED):
            async with s.put(f"{url}/api/handles/88.101/C{n}", json=[{"index": 1, "type": "URL", "data": f"https://c/{n}"}], headers=auth) as r:
                assert r.status == 201, await r.text()
    for session in sessions:
        for n in range(CACHED):
            async with session.get(f"{url}/api/handles/88.101/C{n}") as r:
                assert r.status == 200


def check_refusal(status: int, body: dict | None, headers, tally: Tally, what: str) -> None:
    if status != 503 or not isinstance(body, dict) or body.get("responseCode") != 3 or "Retry-After" not in headers:
        tally.bad.append(f"{what}: {status} {body}")


async def client(session: aiohttp.ClientSession, url: str, auth: dict, stop: asyncio.Event, tally: Tally, names) -> None:
    for turn in itertools.count():
        if stop.is_set():
            return
        kind = ("cached", "cached", "cached", "cached", "missed", "write")[turn % 6]
        try:
            if kind == "write":
                name = next(names)
                async with session.put(f"{url}/api/handles/88.101/{name}", json=[{"index": 1, "type": "URL", "data": "u"}],
                                       headers=auth) as r:
                    status, body, headers = r.status, await r.json(content_type=None), r.headers
                tally.writes[status] += 1
                in_doubt = status == 503 and "may have been applied" in str(body.get("message", ""))
                (tally.acknowledged if status == 201 else tally.in_doubt if in_doubt else tally.refused).append(name)
                if status != 201:
                    check_refusal(status, body, headers, tally, f"write {name}")
                continue
            handle = f"88.101/C{turn % CACHED}" if kind == "cached" else f"88.101/NONE-{turn}-{id(session)}"
            async with session.get(f"{url}/api/handles/{handle}") as r:
                status, body, headers = r.status, await r.json(content_type=None), r.headers
            (tally.cached if kind == "cached" else tally.missed)[status] += 1
            if kind == "missed" and status != 404:
                check_refusal(status, body, headers, tally, f"read {handle}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            tally.bad.append(f"{kind}: {type(exc).__name__} {exc}")
        await asyncio.sleep(0.005)


async def writes_work(url: str, auth: dict) -> bool:
    async with aiohttp.ClientSession() as s:
        async with s.put(f"{url}/api/handles/88.101/PROBE-{time.monotonic_ns()}", json=[{"index": 1, "type": "URL", "data": "p"}],
                         headers=auth) as r:
            return r.status == 201


async def until_writes_work(url: str, auth: dict) -> float:
    started = time.monotonic()
    while not await writes_work(url, auth):
        assert time.monotonic() - started < RECOVERY_DEADLINE, "the node did not serve writes again"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def until_every_worker_caught_up(sessions: list[aiohttp.ClientSession], url: str) -> None:
    """Poll every worker's /readyz until its change follower is back and the database available."""
    deadline = time.monotonic() + RECOVERY_DEADLINE
    for session in sessions:
        while True:
            async with session.get(url + "/readyz") as r:
                ready = await r.json()
            if ready["changeFollower"] and ready["databaseState"]["available"]:
                break
            assert time.monotonic() < deadline, f"a worker did not catch up: {ready}"
            await asyncio.sleep(0.1)


async def present(dsn: str, names: list[str]) -> set[str]:
    async with db.connection(dsn) as conn:
        rows = await conn.fetch("SELECT spelled FROM handles WHERE handle = ANY($1::text[])", [f"88.101/{n}".upper() for n in names])
    return {r["spelled"].split("/", 1)[1] for r in rows}


def assert_served_through_the_outage(tally: Tally) -> None:
    print(f"cached reads {dict(tally.cached)}, misses {dict(tally.missed)}, writes {dict(tally.writes)}, in doubt {len(tally.in_doubt)}")  # shown with -s
    assert tally.bad == [], tally.bad[:5]
    assert 500 not in tally.cached and 500 not in tally.missed and 500 not in tally.writes
    cached = sum(tally.cached.values())
    assert cached > 100 and tally.cached[200] >= 0.99 * cached, tally.cached
    assert tally.missed[503] > 0 and tally.writes[503] > 0, (tally.missed, tally.writes)  # the outage was felt


async def run_load(url: str, auth: dict, sessions, outage) -> Tally:
    """The mixed load, during which ``outage()`` runs."""
    tally, stop = Tally(), asyncio.Event()
    names = (f"W{n}" for n in itertools.count())
    clients = [asyncio.create_task(client(s, url, auth, stop, tally, names)) for s in sessions]
    try:
        await outage()
    finally:
        stop.set()
        await asyncio.gather(*clients)
    return tally


def outage_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.strip()]


async def test_thirty_seconds_without_the_database(dsn, tmp_path):
    proxy = await PgProxy(dsn).start()
    node = ServeProcess("--dsn", proxy.dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "off",
                        "--workers", "2", "--allow-http-auth", env={"IDRES_CACHE_POLL_INTERVAL": "0.5"})
    try:
        admin = await admin_of(dsn, tmp_path)
        auth = basic(admin["user"], admin["password"])
        await asyncio.to_thread(node.start)
        sessions = await pinned(node.http, 2, SESSIONS_PER_WORKER)
        await seed_and_warm(node.http, auth, sessions)
        marks: dict[str, float] = {}

        async def outage() -> None:
            await asyncio.sleep(1)
            proxy.cut()
            marks["cut"] = time.monotonic()
            await asyncio.sleep(30)
            proxy.restore()
            marks["recovered_in"] = await until_writes_work(node.http, auth)
            await until_every_worker_caught_up(sessions, node.http)

        tally = await run_load(node.http, auth, sessions, outage)
        for session in sessions:
            await session.close()
    finally:
        err = await asyncio.to_thread(node.stop)
        await proxy.close()
    assert_served_through_the_outage(tally)
    assert set(tally.acknowledged) <= await present(dsn, tally.acknowledged)
    assert not await present(dsn, tally.refused)
    lines = outage_lines(err)
    print(f"{len(lines)} log lines; writes served again {marks['recovered_in']:.1f} s after the database came back")
    assert len(lines) < 20, "\n".join(lines)
    assert any("database unavailable" in line for line in lines) and any("database back after" in line for line in lines), "\n".join(lines)


async def test_the_embedded_postmaster_killed_under_load(tmp_path):
    data = tmp_path / "data"
    node = ServeProcess("--data-dir", str(data), "--port", "0", "--tls-port", "off", "--workers", "2", "--allow-http-auth")
    try:
        await asyncio.to_thread(node.start)
        admin = json.loads((await asyncio.to_thread(idres, "admin", "create", "--prefix", "88.101", "--data-dir", str(data), "--json")).stdout
                           .strip().splitlines()[-1]) if await _home(data) else None
        auth = basic(admin["user"], admin["password"])
        await until_writes_work(node.http, auth)
        sessions = await pinned(node.http, 2, SESSIONS_PER_WORKER)
        await seed_and_warm(node.http, auth, sessions)
        marks: dict[str, float] = {}

        async def outage() -> None:
            await asyncio.sleep(1)
            postmaster = int((data / "postgres" / "postmaster.pid").read_text().splitlines()[0])
            os.kill(postmaster, signal.SIGKILL)
            await asyncio.sleep(1)
            marks["recovered_in"] = await until_writes_work(node.http, auth)
            await until_every_worker_caught_up(sessions, node.http)

        tally = await run_load(node.http, auth, sessions, outage)
        async with aiohttp.ClientSession() as s:
            async with s.get(node.http + "/readyz") as r:
                ready = await r.json()
        acknowledged = await _present_embedded(data, tally.acknowledged)
        refused = await _present_embedded(data, tally.refused)
        for session in sessions:
            await session.close()
    finally:
        await asyncio.to_thread(node.stop)
    assert_served_through_the_outage(tally)
    print(f"writes served again {marks['recovered_in']:.1f} s after the postmaster was killed")
    assert set(tally.acknowledged) <= acknowledged
    assert not refused
    assert ready["embeddedDatabase"]["restarts"] >= 1 and ready["embeddedDatabase"]["running"]


async def _home(data: Path) -> bool:
    result = await asyncio.to_thread(idres, "prefix", "home", "88.101", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    return True


async def _present_embedded(data: Path, names: list[str]) -> set[str]:
    from registry.pg.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(data)
    dsn = await asyncio.to_thread(embedded.start)
    try:
        return await present(dsn, names)
    finally:
        await asyncio.to_thread(embedded.stop)
