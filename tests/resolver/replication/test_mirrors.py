"""Mirrors between real nodes: an origin homing 88.101 with 10,000 signed records (its key certified by a
running root), and mirrors that follow it, each an ``idres serve`` with its own database, set up with
``idres mirror add`` and verifying against the root key."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import aiohttp
import pytest

from tests.nodes import basic
from tests.tiers import Tier, certify, make_root, run

from .cluster import (
    PREFIX,
    Origin,
    changes_after,
    converged,
    head,
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


async def test_writes_to_a_mirrored_prefix_are_refused_naming_the_origin(origin, mirror_tier):
    await origin.add_mirror(mirror_tier)
    mirror_tier.serve("--trust-root", str(origin.trust), env=FAST)
    await until(lambda: converged(origin.tier, mirror_tier), "the mirror holds the origin's records")
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
