"""Three tiers, three nodes: root → secondary → enterprise, certified and verified with the CLI."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from resolver.keys.keyring import Keyring
from tests.nodes import InProcessNode, idres
from tests.tiers import Tier, run

URL_VALUE = {"index": 1, "type": "URL", "data": "https://products.example.com/SN-1"}
ADMIN_VALUE = {"index": 100, "type": "HS_ADMIN",
               "data": {"format": "admin", "value": {"handle": "0.NA/88.101.5", "index": 200, "permissions": "011111110011"}}}


def serving(tier: Tier) -> InProcessNode:
    """A running node of a tier: its own database and keys."""
    return InProcessNode(tier.dsn, tier.dir, keys_dir=tier.keys)


@pytest.fixture
async def tiers(new_database, tmp_path):
    """Keys, prefixes and certificates of a root (0.0, 88), a secondary (88.101) and an enterprise (88.101.5)."""
    root, secondary, enterprise = [Tier(n, await new_database(), tmp_path) for n in ("root", "secondary", "enterprise")]
    for tier in (root, secondary, enterprise):
        await run("keys", "generate", *tier.opts())
    await run("prefix", "home", "0.0", *root.opts())
    await run("prefix", "home", "88", *root.opts())
    await run("keys", "certify", "--root", *root.opts())
    for parent, child, prefix in ((root, secondary, "88.101"), (secondary, enterprise, "88.101.5")):
        await run("prefix", "home", prefix, *child.opts())
        exported = child.dir / "key.json"
        exported.write_text(json.dumps(await run("keys", "export", *child.opts())))
        certificate = child.dir / "cert.jws"
        await run("keys", "certify", prefix, "--key", str(exported), "--out", str(certificate), *parent.opts())
        await run("keys", "install-cert", str(certificate), *child.opts())
    root_key = Keyring(root.keys)
    pem = root_key.public_key(root_key.active.kid).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "root.pem").write_bytes(pem)
    return root, secondary, enterprise


async def test_a_record_verifies_through_three_tiers(tiers, tmp_path):
    root, secondary, enterprise = tiers
    async with serving(root) as r, serving(secondary) as s, serving(enterprise) as e:
        await e.provision("88.101.5")
        put = await e.session.put(e.url("/api/handles/88.101.5/SN-1"), json=[URL_VALUE, ADMIN_VALUE], headers=e.auth("88.101.5"))
        assert put.status == 201
        nodes = ("--node", e.http, "--node", s.http, "--node", r.http)
        report = await run("verify", "88.101.5/SN-1", *nodes, "--root-key", str(tmp_path / "root.pem"))
        assert report["ok"] is True
        assert {v["type"]: v["status"] for v in report["values"]} == {"URL": "signed and valid", "HS_ADMIN": "signed and valid"}
        chain = report["signatures"][0]["chain"]
        # signature by 88.101.5; its certificate by 88.101; that by 88; that by the root; the root by itself
        assert [c.split(":", 1)[1] for c in chain] == ["0.NA/88.101.5", "0.NA/88.101", "0.NA/88", "0.0/0.0", "0.0/0.0"]
        # the prefix records themselves verify too, at every tier
        for handle in ("0.NA/88.101.5", "0.NA/88.101", "0.NA/88", "0.0/0.0"):
            assert (await run("verify", handle, *nodes, "--root-key", str(tmp_path / "root.pem")))["ok"], handle


async def test_a_different_root_key_is_not_trusted(tiers, tmp_path):
    root, secondary, enterprise = tiers
    other = Keyring(tmp_path / "other")
    other.generate("ed25519", int(time.time()))
    pem = other.public_key(other.active.kid).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "other.pem").write_bytes(pem)
    async with serving(root) as r, serving(secondary) as s, serving(enterprise) as e:
        result = await asyncio.to_thread(
            idres, "verify", "0.NA/88.101.5", "--node", e.http, "--node", s.http, "--node", r.http,
            "--root-key", str(tmp_path / "other.pem"), "--json")
        assert result.returncode == 1
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["ok"] is False
        assert set(v["status"] for v in report["values"]) == {"untrusted chain"}
        assert "not a trusted root" in report["signatures"][0]["problem"]


async def test_rotation_keeps_old_signatures_valid_and_signs_new_ones_with_the_new_key(tiers, tmp_path):
    root, secondary, enterprise = tiers
    async with serving(root) as r, serving(secondary) as s, serving(enterprise) as e:
        await e.provision("88.101.5")
        assert (await e.session.put(e.url("/api/handles/88.101.5/OLD"), json=[URL_VALUE], headers=e.auth("88.101.5"))).status == 201
        # a new key: pending, published, certified by the parent from the child's own answer, installed, activated
        await run("keys", "generate", *enterprise.opts())
        certificate = enterprise.dir / "cert2.jws"
        await run("keys", "certify", "88.101.5", "--key", e.http, "--out", str(certificate), *secondary.opts())
        await run("keys", "install-cert", str(certificate), *enterprise.opts())
        rotated = await run("keys", "rotate", *enterprise.opts())
        assert rotated["retired"] is not None
        assert (await e.session.put(e.url("/api/handles/88.101.5/NEW"), json=[URL_VALUE], headers=e.auth("88.101.5"))).status == 201
        nodes = ("--node", e.http, "--node", s.http, "--node", r.http)
        old = await run("verify", "88.101.5/OLD", *nodes, "--root-key", str(tmp_path / "root.pem"))
        new = await run("verify", "88.101.5/NEW", *nodes, "--root-key", str(tmp_path / "root.pem"))
        assert old["ok"] and new["ok"]
        assert old["signatures"][0]["issuer"] == "300:0.NA/88.101.5"
        assert new["signatures"][0]["issuer"] == "301:0.NA/88.101.5"
