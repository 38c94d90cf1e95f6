"""Tiers of real nodes for tests: each with its own database and keys, set up and run through the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import serialization

from resolver.keys.keyring import Keyring
from tests.nodes import ServeProcess, basic, idres


async def run(*args: str) -> dict:
    """``idres ARGS --json``, which must succeed; its JSON answer."""
    result = await asyncio.to_thread(idres, *args, "--json")
    assert result.returncode == 0, f"idres {' '.join(args)}: {result.stdout}{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


class Tier:
    """One node: a name, a database, a directory with its keys; ``serve`` runs it as ``idres serve``."""

    def __init__(self, name: str, dsn: str, tmp: Path) -> None:
        self.name, self.dsn = name, dsn
        self.dir = tmp / name
        self.keys = self.dir / "keys"
        self.process: ServeProcess | None = None
        self.admins: dict[str, dict] = {}

    def opts(self) -> tuple[str, ...]:
        return ("--dsn", self.dsn, "--keys-dir", str(self.keys))

    def serve(self, *extra: str, env: dict[str, str] | None = None) -> ServeProcess:
        self.process = ServeProcess("--data-dir", str(self.dir), *self.opts(), "--port", "0", "--tls-port", "off",
                                    "--workers", "1", "--allow-http-auth", *extra, env=env).start()
        return self.process

    @property
    def http(self) -> str:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.http

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    async def admin(self, prefix: str) -> dict:
        if prefix not in self.admins:
            self.admins[prefix] = await run("admin", "create", "--prefix", prefix, *self.opts())
        return self.admins[prefix]

    async def put(self, session: aiohttp.ClientSession, handle: str, values: list[dict]) -> int:
        admin = await self.admin(handle.partition("/")[0])
        async with session.put(f"{self.http}/api/handles/{handle}", json=values, headers=basic(admin["user"], admin["password"])) as r:
            return r.status


async def home(tier: Tier, *prefixes: str) -> None:
    for prefix in prefixes:
        await run("prefix", "home", prefix, *tier.opts())


async def make_root(tier: Tier, *prefixes: str) -> Path:
    """A trust root homing ``0.0`` and ``prefixes``, self-certified; returns its public key file."""
    await run("keys", "generate", *tier.opts())
    await home(tier, "0.0", *prefixes)
    await run("keys", "certify", "--root", *tier.opts())
    keyring = Keyring(tier.keys)
    pem = keyring.public_key(keyring.active.kid).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tier.dir / "root.pem"
    path.write_bytes(pem)
    return path


async def certify(parent: Tier, child: Tier, prefix: str) -> None:
    """``child`` homes ``prefix`` with a key of its own, certified by ``parent``."""
    await run("keys", "generate", *child.opts())
    await home(child, prefix)
    exported = child.dir / f"key-{prefix}.json"
    exported.write_text(json.dumps(await run("keys", "export", *child.opts())))
    certificate = child.dir / f"cert-{prefix}.jws"
    await run("keys", "certify", prefix, "--key", str(exported), "--out", str(certificate), *parent.opts())
    await run("keys", "install-cert", str(certificate), *child.opts())


async def delegate(parent: Tier, prefix: str, *children: Tier) -> dict:
    return await run("prefix", "delegate", prefix, *[a for c in children for a in ("--to", c.http)], *parent.opts())
