"""``idres admin hash-secrets``: every HS_SECKEY stored in clear by an earlier version, hashed at once."""

from __future__ import annotations

import asyncio
import json

from registry.model import Handle, HandleValue, Record
from registry.pg import db
from registry.pg.store import Store
from resolver.core import seckeys
from tests.nodes import idres


async def test_clear_secrets_are_hashed_and_still_match(dsn):
    pool = await db.create_pool(dsn, max_size=1)
    try:
        store = Store(pool)
        for n, secret in enumerate((b"first-secret", b"second-secret")):
            await store.create(Record(Handle.parse(f"88.101/USER{n}"), (HandleValue(300, "HS_SECKEY", secret, permissions=0x0C),
                                                                        HandleValue(1, "URL", b"https://x"))))
        await store.create(Record(Handle.parse("88.101/OTHER"), (HandleValue(1, "URL", b"https://y"),)))
    finally:
        await pool.close()
    result = await asyncio.to_thread(idres, "admin", "hash-secrets", "--dsn", dsn, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"hashed": 2}
    async with db.connection(dsn) as conn:
        rows = {r["handle"]: r["vals"] for r in await conn.fetch("SELECT handle, vals FROM handles")}
    assert all(b"first-secret" not in v and b"second-secret" not in v for v in rows.values())
    pool = await db.create_pool(dsn, max_size=1)
    try:
        record = (await Store(pool).get("88.101/USER0")).record
    finally:
        await pool.close()
    assert seckeys.matches(record.value_at(300).data, b"first-secret") and record.value_at(1).data == b"https://x"
    again = await asyncio.to_thread(idres, "admin", "hash-secrets", "--dsn", dsn, "--json")
    assert json.loads(again.stdout) == {"hashed": 0}
