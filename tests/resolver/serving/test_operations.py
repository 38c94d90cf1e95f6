"""What operators run into: the embedded cluster's directory, node keys on shared databases, the cache off."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from registry.pg import db
from registry.pg.embedded import EmbeddedPostgres
from registry.errors import ConfigurationError
from registry.model import HandleValue, prefix_record_handle
from registry.values import PUBKEY, SECKEY, SiteInfo
from resolver.config import Settings
from resolver.keys.publication import first_key, free_key_index, publish_keys
from resolver.keys.keyring import Keyring
from resolver.ops.provisioning import home_prefix, open_store
from resolver.keys.site import key_bytes, site_of
from tests.nodes import InProcessNode

DEADLINE = 30.0


def test_a_data_directory_too_long_for_the_socket_is_refused(tmp_path):
    deep = tmp_path / ("d" * 120)
    with pytest.raises(ConfigurationError, match="too long for the embedded PostgreSQL's socket"):
        EmbeddedPostgres(deep).start()


async def test_a_postmaster_pid_of_another_cluster_is_not_trusted(tmp_path):
    """A data directory copied from a running node must get its own server, not use the original's."""
    original = EmbeddedPostgres(tmp_path / "a")
    original_dsn = await asyncio.to_thread(original.start)
    copy = tmp_path / "b" / "postgres"
    copy.mkdir(parents=True)
    shutil.copy(tmp_path / "a" / "postgres" / "postmaster.pid", copy / "postmaster.pid")
    try:
        other = EmbeddedPostgres(tmp_path / "b")
        other_dsn = await asyncio.to_thread(other.start)
        try:
            assert other_dsn != original_dsn
            async with db.connection(other_dsn) as conn:
                assert Path(await conn.fetchval("SHOW data_directory")).resolve() == copy.resolve()
        finally:
            await asyncio.to_thread(other.stop)
        async with db.connection(original_dsn) as conn:  # the original is untouched
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await asyncio.to_thread(original.stop)


@pytest.fixture
async def keyed_store(dsn, tmp_path):
    settings = Settings.load(env={}, keys_dir=tmp_path / "keys", data_dir=tmp_path)
    keyring = Keyring(settings.keys_path)
    pool = await db.create_pool(dsn, max_size=2)
    store = await open_store(settings, pool, keyring)
    yield settings, keyring, store
    await pool.close()


async def test_keys_are_published_at_free_indexes_and_never_over_other_values(keyed_store):
    settings, keyring, store = keyed_store
    now = int(time.time())
    await home_prefix(store, site_of(settings, None), "88.101", now)
    handle = prefix_record_handle("88.101")
    stored = await store.get(handle.key)
    owner = HandleValue(300, SECKEY, b"prefix-owner-secret", permissions=0x0C, timestamp=now)  # Handle.Net's usual 300
    await store.replace(stored.record.with_values([*stored.record.values, owner]), stored.version)

    await first_key(store, keyring, "ed25519", now)
    assert keyring.active.index == 301  # 300 is taken
    await publish_keys(store, keyring, now, settings.signing.signature_lifetime)
    record = (await store.get(handle.key)).record
    assert record.value_at(300) == owner  # untouched
    assert record.value_at(301).type == PUBKEY and record.value_at(301).data == key_bytes(keyring, keyring.active.kid)

    stored = await store.get(handle.key)
    squatter = HandleValue(302, "EMAIL", b"ops@example.com", timestamp=now)
    await store.replace(stored.record.with_values([*stored.record.values, squatter]), stored.version)
    assert await free_key_index(store, keyring) == 303
    keyring.generate("ed25519", now, index=302)  # as if made elsewhere without looking
    with pytest.raises(ConfigurationError, match="index 302"):
        await publish_keys(store, keyring, now, settings.signing.signature_lifetime)
    assert (await store.get(handle.key)).record.value_at(302) == squatter


async def test_a_process_without_the_nodes_keys_refuses_to_make_its_own(keyed_store, tmp_path):
    settings, keyring, store = keyed_store
    now = int(time.time())
    await first_key(store, keyring, "ed25519", now)
    await home_prefix(store, site_of(settings, keyring), "88.101", now, keyring)
    stranger = Keyring(tmp_path / "other-keys")
    with pytest.raises(ConfigurationError, match="keys directory"):
        await first_key(store, stranger, "ed25519", now)
    assert stranger.entries == []


async def test_site_and_prefix_records_follow_a_key_rotation(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path) as node:
        await node.provision("88.101")
        first = await (await node.session.get(node.url("/api/site", secure=False))).json()
        rotating = Keyring(node.settings.keys_path)  # as `idres keys generate/rotate` from another process
        now = int(time.time())
        rotating.generate("ed25519", now)
        new, _old = rotating.rotate(now)
        second = await (await node.session.get(node.url("/api/site", secure=False))).json()
        assert first["site"]["servers"][0]["publicKey"] != second["site"]["servers"][0]["publicKey"]
        assert second["site"]["servers"][0]["publicKey"]["value"]["x"] == key_bytes_jwk_x(rotating, new.kid)
        store = node.node.store
        await publish_keys(store, rotating, now, node.settings.signing.signature_lifetime)
        record = (await store.get(prefix_record_handle("88.101").key)).record
        site = SiteInfo.from_bytes(record.of_type("HS_SITE")[0].data)
        assert site.servers[0].public_key == key_bytes(rotating, new.kid)


def key_bytes_jwk_x(keyring: Keyring, kid: str) -> str:
    from registry.jws import public_jwk

    return public_jwk(keyring.public_key(kid))["x"]


async def test_with_the_cache_off_homed_prefixes_still_follow_the_change_log(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, cache_enabled=False) as node:
        await node.provision("88.101")
        pool = await db.create_pool(dsn, max_size=1)
        try:
            store = await open_store(node.settings, pool, node.keyring)
            await home_prefix(store, site_of(node.settings, node.keyring), "88.777", int(time.time()), node.keyring)
        finally:
            await pool.close()
        deadline = time.monotonic() + DEADLINE
        while True:  # another process homed it: this node learns it from the change log
            r = await node.session.get(node.url("/api/handles/88.777/X", secure=False))
            if r.status == 404:
                break
            assert time.monotonic() < deadline, "the node never learnt of the new prefix"
            await asyncio.sleep(0.05)
        assert node.node.engine.enabled is False


@pytest.mark.parametrize("workers, pool, expected", [(2, 8, (2, 8)), (16, 8, (16, 4)), (30, 8, (30, 2)), (64, 8, (30, 2))])
def test_workers_and_pools_fit_the_embedded_database(workers, pool, expected):
    from resolver.serving.budget import EMBEDDED_CONNECTIONS, within_connection_budget

    fitted = within_connection_budget(Settings.load(env={}, workers=workers, db_pool_size=pool), embedded=True)
    assert (fitted.listen.workers, fitted.storage.db_pool_size) == expected
    assert fitted.listen.workers * (fitted.storage.db_pool_size + 1) <= EMBEDDED_CONNECTIONS
    untouched = within_connection_budget(Settings.load(env={}, workers=workers, db_pool_size=pool), embedded=False)
    assert (untouched.listen.workers, untouched.storage.db_pool_size) == (workers, pool)
