"""An origin and its mirrors for replication tests: real ``idres serve`` nodes set up through the CLI, each
with its own database; the root of the chain of trust runs too, so that mirrors verify what they copy."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg

from registry.model import Handle, HandleValue, Record
from registry.pg import db
from resolver.config import Settings
from resolver.keys.keyring import Keyring
from resolver.ops.provisioning import open_store
from tests.resolver.resolution.test_tiers import databases as new_databases, until  # noqa: F401  (shared with those tests)
from tests.tiers import Tier, run

PREFIX = "88.101"


def product(n: int, now: int, version: str = "v1") -> Record:
    return Record(Handle.parse(f"{PREFIX}/SN-{n:06d}"), (
        HandleValue(1, "URL", f"https://products.example.com/{version}/SN-{n:06d}".encode(), timestamp=now),
        HandleValue(2, "MODEL", f"WM-{700 + n % 5}".encode(), timestamp=now),
    ))


async def seed(tier: Tier, count: int, start: int = 1) -> None:
    """``count`` signed records written as the node itself would (COPY through a signing store)."""
    settings = Settings.load(env={}, dsn=tier.dsn, keys_dir=tier.keys)
    pool = await db.create_pool(tier.dsn, max_size=2)
    try:
        store = await open_store(settings, pool, Keyring(tier.keys))
        now = int(time.time())
        for first in range(start, start + count, 5000):
            await store.bulk_create(product(n, now) for n in range(first, min(first + 5000, start + count)))
    finally:
        await pool.close()


async def records(dsn: str, prefix: str = PREFIX) -> dict[str, tuple[str, bytes]]:
    """Every record of ``prefix`` held in a database, and its prefix record: key → (spelling, encoded values)."""
    async with db.connection(dsn) as conn:
        rows = await conn.fetch("SELECT handle, spelled, vals FROM handles WHERE prefix = $1 OR handle = $2",
                                prefix, f"0.NA/{prefix}")
    return {r["handle"]: (r["spelled"], bytes(r["vals"])) for r in rows}


async def head(dsn: str) -> int:
    async with db.connection(dsn) as conn:
        return await conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")


async def changes_after(dsn: str, seq: int) -> list[tuple[int, str, int]]:
    async with db.connection(dsn) as conn:
        rows = await conn.fetch("SELECT seq, handle, op FROM changes WHERE seq > $1 ORDER BY seq", seq)
    return [(r["seq"], r["handle"], r["op"]) for r in rows]


async def sync_status(tier: Tier) -> dict:
    async with aiohttp.ClientSession() as session, session.get(f"{tier.http}/api/sync/status") as r:
        assert r.status == 200
        return await r.json()


async def mirror_of(tier: Tier, prefix: str = PREFIX) -> dict | None:
    status = await sync_status(tier)
    return next((m for m in status["mirrors"] if m["prefix"] == prefix), None)


async def converged(origin: Tier, mirror: Tier) -> bool:
    """The mirror follows and holds exactly the origin's records of the prefix, byte for byte."""
    state = await mirror_of(mirror)
    if state is None or state["state"] != "following" or state["cursor"] < await head(origin.dsn):
        return False
    return await records(mirror.dsn) == await records(origin.dsn)


@dataclass
class Origin:
    root: Tier
    tier: Tier
    trust: Path
    admin: dict
    password_file: Path
    tmp: Path

    async def add_mirror(self, mirror: Tier, *extra: str) -> dict:
        return await run("mirror", "add", "--from", self.tier.http, "--prefix", PREFIX, "--user", self.admin["user"],
                         "--password-file", str(self.password_file), "--trust-root", str(self.trust), *extra, *mirror.opts())


async def tamper(dsn: str, key: str, url: bytes) -> None:
    """Change a record's URL in the database, as someone without the node's key would, and log the change."""
    async with db.connection(dsn) as conn:
        row = await conn.fetchrow("SELECT vals FROM handles WHERE handle = $1", key)
        vals = bytes(row["vals"])
        start = vals.index(b"https://")
        end = vals.index(b"SN-", start) + 9
        forged = vals[:start] + url.ljust(end - start, b"x")[: end - start] + vals[end:]
        async with conn.transaction():
            await conn.execute("UPDATE handles SET vals = $2 WHERE handle = $1", key, forged)
            await conn.fetchval("SELECT log_change($1, 3::smallint)", key)


async def connect(dsn: str) -> asyncpg.Connection:
    return await db.connect(dsn)


async def change(tier: Tier, *, create: range = range(0), update: range = range(0), delete: range = range(0)) -> None:
    """Writes at a node's database as the node makes them (signed, logged): new records in bulk, then
    updates and deletions one by one."""
    from registry.model import fold

    settings = Settings.load(env={}, dsn=tier.dsn, keys_dir=tier.keys)
    pool = await db.create_pool(tier.dsn, max_size=2)
    try:
        store = await open_store(settings, pool, Keyring(tier.keys))
        now = int(time.time())
        for first in range(create.start, create.stop, 500):
            await store.bulk_create(product(n, now) for n in range(first, min(first + 500, create.stop)))
        for n in update:
            stored = await store.get(fold(f"{PREFIX}/SN-{n:06d}"))
            await store.replace(product(n, now, "v2"), stored.version)
        for n in delete:
            await store.delete(Handle.parse(f"{PREFIX}/SN-{n:06d}"))
    finally:
        await pool.close()


def in_prefix(key: str) -> bool:
    return key.startswith(PREFIX + "/") or key == f"0.NA/{PREFIX}" or key.startswith(f"0.NA/{PREFIX}.")
