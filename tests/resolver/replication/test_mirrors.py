"""Mirrors between real nodes: an origin homing 88.101 with 10,000 signed records (its key certified by a
running root), and mirrors that follow it, each an ``idres serve`` with its own database, set up with
``idres mirror add`` and verifying against the root key."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from registry.pg import db, feed, mirrors
from tests.nodes import basic
from tests.tiers import Tier, certify, make_root, run

from .cluster import (
    PREFIX,
    Origin,
    change,
    changes_after,
    converged,
    head,
    in_prefix,
    mirror_of,
    new_databases,
    records,
    seed,
    tamper,
    until,
)

RECORDS = 10_000
FAST = {"IDRES_MIRROR_POLL_INTERVAL": "0.2", "IDRES_CACHE_POLL_INTERVAL": "0.2"}


@pytest.fixture(scope="module")
async def origin(pg_root, template_dsn):
    tmp = Path(tempfile.mkdtemp(prefix="idres-mirrors-"))
    root_dsn, origin_dsn = await new_databases(pg_root, 2)
    root, tier = Tier("root", root_dsn, tmp), Tier("origin", origin_dsn, tmp)
    trust = await make_root(root, "88")
    await certify(root, tier, PREFIX)
    await seed(tier, RECORDS)
    admin = await tier.admin(PREFIX)
    password_file = tmp / "mirror-password"
    password_file.write_text(admin["password"] + "\n")
    try:
        await asyncio.to_thread(root.serve, "--trust-root", str(trust))
        await asyncio.to_thread(tier.serve, "--trust-root", str(trust), "--root-node", root.http)
        yield Origin(root, tier, trust, admin, password_file, tmp)
    finally:
        tier.stop()
        root.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
async def mirror_tier(origin, pg_root):
    (dsn,) = await new_databases(pg_root, 1)
    tier = Tier(f"mirror-{os.urandom(3).hex()}", dsn, origin.tmp)
    yield tier
    tier.stop()


async def put(tier: Tier, admin: dict, handle: str, url: str) -> int:
    async with aiohttp.ClientSession() as s, s.put(f"{tier.http}/api/handles/{handle}", headers=basic(admin["user"], admin["password"]),
                                                   json=[{"index": 1, "type": "URL", "data": url}]) as r:
        return r.status


async def delete(tier: Tier, admin: dict, handle: str) -> int:
    async with aiohttp.ClientSession() as s, s.delete(f"{tier.http}/api/handles/{handle}",
                                                      headers=basic(admin["user"], admin["password"])) as r:
        return r.status


async def get(tier: Tier, handle: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s, s.get(f"{tier.http}/api/handles/{handle}") as r:
        return r.status, await r.read()


async def test_a_mirror_converges_to_exactly_the_origins_records_and_follows_later_changes(origin, mirror_tier):
    mirror_tier.serve("--trust-root", str(origin.trust), env=FAST)
    added = await origin.add_mirror(mirror_tier)  # on the running node: no restart
    assert (added["prefix"], added["mirrored"], added["trustRoot"]) == (PREFIX, True, True)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror holds the origin's records")
    held = await records(mirror_tier.dsn)
    assert len(held) == RECORDS + 2  # the records, the admin identity and the prefix record 0.NA/88.101

    admin = origin.admin
    assert await put(origin.tier, admin, f"{PREFIX}/NEW-1", "https://example.com/new-1") == 201
    assert await put(origin.tier, admin, f"{PREFIX}/SN-000007", "https://example.com/changed-7") == 200
    assert await delete(origin.tier, admin, f"{PREFIX}/SN-000009") == 200
    await until(lambda: converged(origin.tier, mirror_tier), "later changes reached the mirror")
    held = await records(mirror_tier.dsn)
    assert f"{PREFIX}/NEW-1" in held and f"{PREFIX}/SN-000009" not in held and len(held) == RECORDS + 2

    for handle in (f"{PREFIX}/SN-000007", f"{PREFIX}/NEW-1", f"0.NA/{PREFIX}"):  # served unchanged, the origin's signatures
        assert await get(mirror_tier, handle) == await get(origin.tier, handle)
    assert (await get(mirror_tier, f"{PREFIX}/SN-000009"))[0] == 404

    status = (await run("mirror", "status", *mirror_tier.opts()))["mirrors"][0]
    assert (status["state"], status["records"], status["rejected"], status["lagChanges"]) == ("following", RECORDS + 2, 0, 0)
    assert status["verification"] == "sealed" and status["lastError"] is None
    log = mirror_tier.process.stop()
    assert f"snapshot of {RECORDS + 2} records at cursor" in log and f"({RECORDS + 2} by seal, 0 one by one; 0 deleted)" in log


async def lease_holders(dsn: str) -> int:
    lease = mirrors.lease_key(PREFIX)
    async with db.connection(dsn) as conn:
        return await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                                   " AND classid::bigint = $1 AND objid::bigint = $2", (lease >> 32) & 0xFFFFFFFF, lease & 0xFFFFFFFF)


async def test_one_process_follows_and_writes_to_a_mirrored_prefix_are_refused_naming_the_origin(origin, mirror_tier):
    await origin.add_mirror(mirror_tier)
    mirror_tier.serve("--trust-root", str(origin.trust), "--workers", "2", env=FAST)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror holds the origin's records")
    assert await lease_holders(mirror_tier.dsn) == 1  # two workers, one follower
    async with aiohttp.ClientSession() as s:
        admin = origin.admin  # its identity is mirrored too: it authenticates here, but may not write
        for method, kwargs in ((s.put, {"json": [{"index": 1, "type": "URL", "data": "https://x"}]}), (s.delete, {})):
            async with method(f"{mirror_tier.http}/api/handles/{PREFIX}/SN-000001", headers=basic(admin["user"], admin["password"]),
                              **kwargs) as r:
                body = await r.json()
            assert (r.status, body["responseCode"]) == (400, 301), body
            assert origin.tier.http in body["message"] and "mirror" in body["message"]
    assert await records(mirror_tier.dsn) == await records(origin.tier.dsn)
    listed = await run("mirror", "list", *mirror_tier.opts())
    assert listed["mirrors"] == [{"prefix": PREFIX, "origin": origin.tier.http, "state": "following",
                                  "user": origin.admin["user"], "trustRoot": True}]
    assert (await run("mirror", "remove", PREFIX, *mirror_tier.opts()))["mirrored"] is False

    async def unserved():
        status, _ = await get(mirror_tier, f"{PREFIX}/SN-000001")
        return status == 400

    await until(unserved, "the removed mirror is no longer answered")


def kill(tier: Tier) -> None:
    """SIGKILL the node's workers, then its supervisor: no shutdown of any kind."""
    for pid in tier.process.ready["workerPids"]:
        os.kill(pid, signal.SIGKILL)
    tier.process.stop(signal.SIGKILL)


async def prefix_changes(dsn: str, after: int) -> list[str]:
    return [key for _seq, key, op in await changes_after(dsn, after) if in_prefix(key) and op in (1, 2, 3)]


async def test_a_follower_killed_mid_batch_resumes_with_nothing_lost_or_duplicated(origin, mirror_tier):
    env = {**FAST, "IDRES_MIRROR_BATCH": "20"}
    trust = ("--trust-root", str(origin.trust))
    await origin.add_mirror(mirror_tier)
    mirror_tier.serve(*trust, env=env)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror holds the origin's records")
    origin_at, mirror_at = await head(origin.tier.dsn), await head(mirror_tier.dsn)
    mirror_tier.stop()
    await change(origin.tier, create=range(20_001, 22_001), update=range(1001, 1301), delete=range(1301, 1401))
    target = await head(origin.tier.dsn)

    mirror_tier.serve(*trust, env=env)

    async def partway():
        state = await mirror_of(mirror_tier)
        return state["cursor"] is not None and origin_at < state["cursor"] < target

    await until(partway, "the follower is part of the way through the changes")
    kill(mirror_tier)
    mirror_tier.serve(*trust, env=env)
    await until(lambda: converged(origin.tier, mirror_tier), "the restarted mirror caught up")
    # the mirror logged every change it applied: exactly the origin's changes of the prefix, once each, in order
    assert await prefix_changes(mirror_tier.dsn, mirror_at) == await prefix_changes(origin.tier.dsn, origin_at)
    state = await mirror_of(mirror_tier)
    assert (state["snapshots"], state["rejected"], state["applied"]) == (1, 0, 2400)


async def test_the_mirror_catches_up_after_the_origin_was_down(origin, mirror_tier):
    env = {**FAST, "IDRES_MIRROR_BACKOFF_MAX": "1"}
    await origin.add_mirror(mirror_tier)
    mirror_tier.serve("--trust-root", str(origin.trust), env=env)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror holds the origin's records")
    port = origin.tier.http.rsplit(":", 1)[1]
    origin.tier.stop()
    try:
        await change(origin.tier, create=range(30_001, 30_101), update=range(2001, 2051), delete=range(2051, 2061))

        async def noticed():
            state = await mirror_of(mirror_tier)
            return state["lastError"] and "did not answer" in state["lastError"] and state["lagSeconds"] > 0

        await until(noticed, "the mirror noticed that the origin is down")
    finally:
        origin.tier.serve("--trust-root", str(origin.trust), "--root-node", origin.root.http, "--port", port)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror caught up once the origin was back")
    state = await mirror_of(mirror_tier)
    assert (state["lastError"], state["lagChanges"], state["snapshots"]) == (None, 0, 1)


async def test_sixteen_concurrent_writers_every_change_is_seen_once_in_commit_order(origin, mirror_tier):
    await origin.add_mirror(mirror_tier)
    mirror_tier.serve("--trust-root", str(origin.trust), env=FAST)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror holds the origin's records")
    origin_at, mirror_at = await head(origin.tier.dsn), await head(mirror_tier.dsn)
    admin, seen, done = origin.admin, [], asyncio.Event()

    async def read_feed(session: aiohttp.ClientSession) -> None:
        cursor = origin_at
        while not done.is_set() or cursor < await head(origin.tier.dsn):
            params = {"after": str(cursor), "prefix": PREFIX, "limit": "25", "wait": "1"}
            async with session.get(f"{origin.tier.http}/api/sync/changes", params=params,
                                   headers=basic(admin["user"], admin["password"])) as r:
                assert r.status == 200
                page = await r.json()
            seen.extend(page["changes"])
            cursor = page["next"]

    async def write(session: aiohttp.ClientSession, writer: int) -> None:
        for n in range(20):
            handle = f"{PREFIX}/W{writer:02d}-{n % 10}"
            async with session.put(f"{origin.tier.http}/api/handles/{handle}", headers=basic(admin["user"], admin["password"]),
                                   json=[{"index": 1, "type": "URL", "data": f"https://example.com/{writer}/{n}"}]) as r:
                assert r.status in (200, 201)

    async with aiohttp.ClientSession() as session:
        reader = asyncio.create_task(read_feed(session))
        await asyncio.gather(*(write(session, w) for w in range(16)))
        done.set()
        await reader
    committed = [(seq, key) for seq, key, _op in await changes_after(origin.tier.dsn, origin_at) if in_prefix(key)]
    assert len(committed) == 16 * 20
    assert [(c["cursor"], c["handle"]) for c in seen] == committed  # each once, in commit order
    assert all(c["op"] == "upsert" and c["record"]["handle"].startswith(f"{PREFIX}/W") for c in seen)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror took in every write")
    assert await prefix_changes(mirror_tier.dsn, mirror_at) == [key for _seq, key in committed]


async def test_past_the_horizon_the_feed_answers_410_and_the_mirror_takes_a_fresh_snapshot(origin, mirror_tier):
    trust = ("--trust-root", str(origin.trust))
    await origin.add_mirror(mirror_tier)
    mirror_tier.serve(*trust, env=FAST)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror holds the origin's records")
    cursor = (await mirror_of(mirror_tier))["cursor"]
    mirror_tier.stop()
    await change(origin.tier, create=range(40_001, 40_011), update=range(3001, 3011), delete=range(3011, 3021))
    async with db.connection(origin.tier.dsn) as conn:  # the origin's pruner, once the retention has passed
        while await feed.prune(conn, datetime.now(timezone.utc) + timedelta(days=1), 5000):
            pass
        assert await feed.horizon(conn) > cursor

    async with aiohttp.ClientSession() as s, s.get(f"{origin.tier.http}/api/sync/changes", params={"after": str(cursor), "prefix": PREFIX},
                                                   headers=basic(origin.admin["user"], origin.admin["password"])) as r:
        body = await r.json()
    assert (r.status, body["responseCode"]) == (410, 300) and "fresh snapshot" in body["message"]

    mirror_tier.serve(*trust, env=FAST)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror took a fresh snapshot")
    state = await mirror_of(mirror_tier)
    assert (state["snapshots"], state["rejected"]) == (2, 0)
    assert f"{PREFIX}/SN-003011" not in await records(mirror_tier.dsn)  # deleted while it was away: gone here too


async def test_a_tampered_record_is_rejected_logged_counted_and_never_applied(origin, mirror_tier, pg_root):
    await origin.add_mirror(mirror_tier)
    mirror_tier.serve("--trust-root", str(origin.trust), env=FAST)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror holds the origin's records")
    key = f"{PREFIX}/SN-000050"
    genuine = (await records(mirror_tier.dsn))[key]
    await tamper(origin.tier.dsn, key, b"https://evil.example/")

    async def rejected():
        return (await mirror_of(mirror_tier))["rejected"] == 1

    await until(rejected, "the mirror rejected the tampered record")
    assert (await records(mirror_tier.dsn))[key] == genuine != (await records(origin.tier.dsn))[key]

    async def counted():
        async with aiohttp.ClientSession() as s, s.get(f"{mirror_tier.http}/metrics") as r:
            text = await r.text()
        return f'idres_mirror_rejected_records_total{{prefix="{PREFIX}"}} 1.0' in text and text

    text = await until(counted, "/metrics counts the rejected record")
    assert f'idres_mirror_lag_changes{{prefix="{PREFIX}"}} 0.0' in text  # the mirror holds every other change

    (dsn,) = await new_databases(pg_root, 1)  # a mirror checking every record of its snapshot refuses it too
    strict = Tier(f"strict-{os.urandom(3).hex()}", dsn, origin.tmp)
    try:
        await origin.add_mirror(strict)
        strict.serve("--trust-root", str(origin.trust), env={**FAST, "IDRES_MIRROR_VERIFY": "records"})

        async def following():
            state = await mirror_of(strict)
            return state["state"] == "following" and state

        state = await until(following, "the strict mirror took its snapshot")
        assert (state["rejected"], state["verification"]) == (1, "records")
        assert f"(0 by seal, {len(await records(origin.tier.dsn))} one by one; 0 deleted)" in strict.process.stop()
        held = await records(strict.dsn)
        assert key not in held and len(held) == len(await records(origin.tier.dsn)) - 1
    finally:
        strict.stop()
    log = mirror_tier.process.stop()
    assert f"mirror of {PREFIX}: rejected {key} from {origin.tier.http}: " in log
    assert await put(origin.tier, origin.admin, key, "https://example.com/restored") == 200  # signed again
