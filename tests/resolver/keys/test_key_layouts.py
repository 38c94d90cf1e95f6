"""The node's own keys in Handle.Net's HS_PUBKEY layout: a node with the RSA fixture key publishes the known
answer bytes; a prefix record written in the older layout (no int4 0 after the modulus) is brought to the
new one at start, signed again, with no duplicate key; ``idres keys`` recognise the keys in either."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization

from registry.jws import Jws, thumbprint
from registry.pg import db
from registry.pg.store import Store
from registry.values import PUBKEY, SIGNATURE, SiteInfo
from resolver.config import Settings
from resolver.keys.keyring import Keyring
from resolver.keys.publication import publish_keys
from resolver.keys.site import site_of
from resolver.ops.bootstrap import prepare_database
from resolver.ops.provisioning import home_prefix, open_store
from tests.nodes import idres
from tests.registry.fixtures import RSA_PREFIX
from tests.registry.fixtures.handle_net_encodings import HS_PUBKEY, HS_PUBKEY_WITHOUT_TRAILER, digest_by_hand

LIFETIME = 30 * 86400


def fixture_keyring(directory: Path, now: int) -> Keyring:
    """A keys directory whose active key (index 300) is the RSA fixture key of the known answers."""
    directory.mkdir(parents=True, exist_ok=True)
    kid = thumbprint(RSA_PREFIX)
    pem = RSA_PREFIX.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (directory / f"{kid}.pem").write_bytes(pem)
    entry = {"kid": kid, "alg": "RS256", "index": 300, "state": "active", "created": now, "retired": None}
    (directory / "keyring.json").write_text(json.dumps({"keys": [entry]}))
    return Keyring(directory)


def site_keys(record) -> list[bytes]:
    return [s.public_key for v in record.of_type("HS_SITE") for s in SiteInfo.from_bytes(v.data).servers]


def pubkey_values(record) -> dict[int, bytes]:
    values = record.of_type(PUBKEY)
    assert len(values) == len({v.index for v in values})
    return {v.index: v.data for v in values}


def signed_digests(record, keyring: Keyring) -> dict[int, str]:
    (signature,) = record.of_type(SIGNATURE)
    jws = Jws.parse(signature.data.decode())
    assert jws.verify(keyring.public_key(keyring.active.kid))
    return {d["index"]: d["digest"] for d in jws.claims()["digests"]["digests"]}


async def in_old_layout(store: Store, prefix: str) -> None:
    """Rewrite the prefix record as idres wrote it before: HS_PUBKEY and the HS_SITE server key without
    the int4 0, signed over those bytes."""
    stored = await store.get(f"0.NA/{prefix}")
    values = []
    for value in stored.record.values:
        if value.type_key == PUBKEY:
            value = replace(value, data=value.data[:-4])
        elif value.type_key == "HS_SITE":
            site = SiteInfo.from_bytes(value.data)
            servers = tuple(replace(s, public_key=s.public_key[:-4]) for s in site.servers)
            value = replace(value, data=replace(site, servers=servers).to_bytes())
        values.append(value)
    await store.replace(stored.record.with_values(values), stored.version)


@pytest.fixture
async def rsa_node(dsn, tmp_path):
    """A node's store, signing with the RSA fixture key, with 88.101 homed: its settings, keyring and store."""
    settings = Settings.load(env={}, data_dir=tmp_path, dsn=dsn)
    keyring = fixture_keyring(settings.keys_path, int(time.time()))
    pool = await db.create_pool(dsn, max_size=2)
    store = await open_store(settings, pool, keyring)
    await home_prefix(store, site_of(settings, keyring), "88.101", int(time.time()), keyring, LIFETIME)
    yield SimpleNamespace(settings=settings, keyring=keyring, store=store, dsn=dsn, data_dir=tmp_path)
    await pool.close()


async def test_old_layout_is_republished_in_handle_nets_at_start(rsa_node):
    store, keyring = rsa_node.store, rsa_node.keyring
    fresh = (await store.get("0.NA/88.101")).record
    assert pubkey_values(fresh) == {300: HS_PUBKEY}  # a new record: the known answer, byte for byte
    assert site_keys(fresh) == [HS_PUBKEY]

    await in_old_layout(store, "88.101")
    old = await store.get("0.NA/88.101")
    assert pubkey_values(old.record) == {300: HS_PUBKEY_WITHOUT_TRAILER}
    assert site_keys(old.record) == [HS_PUBKEY_WITHOUT_TRAILER]
    assert signed_digests(old.record, keyring)[300] == digest_by_hand("HS_PUBKEY", HS_PUBKEY_WITHOUT_TRAILER)

    await prepare_database(rsa_node.settings, rsa_node.dsn, embedded=False)  # what `idres serve` does at start
    new = await store.get("0.NA/88.101")
    assert new.version == old.version + 1
    assert pubkey_values(new.record) == {300: HS_PUBKEY}  # replaced in place: one key, no duplicate
    assert site_keys(new.record) == [HS_PUBKEY]
    digests = signed_digests(new.record, keyring)  # signed again, over the new bytes
    assert digests[300] == digest_by_hand("HS_PUBKEY", HS_PUBKEY)
    assert digests[1] == digest_by_hand("HS_SITE", new.record.value_at(1).data)
    assert [v.index for v in new.record.values] == [v.index for v in old.record.values]

    await prepare_database(rsa_node.settings, rsa_node.dsn, embedded=False)
    assert (await store.get("0.NA/88.101")).version == new.version  # in line: nothing written
    assert await publish_keys(store, keyring, int(time.time()), LIFETIME) == 0


async def test_idres_keys_recognise_the_node_keys_in_the_old_layout(rsa_node):
    store = rsa_node.store
    await in_old_layout(store, "88.101")

    done = idres("keys", "generate", "--dsn", rsa_node.dsn, "--data-dir", str(rsa_node.data_dir), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["state"], report["index"], report["publishedOn"]) == ("pending", 301, 1)

    record = (await store.get("0.NA/88.101")).record
    keys = pubkey_values(record)
    assert set(keys) == {300, 301}  # the old-layout key was taken for the node's own, not kept beside it
    assert keys[300] == HS_PUBKEY
    assert site_keys(record) == [HS_PUBKEY]  # the active key, now in Handle.Net's layout
