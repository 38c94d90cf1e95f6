"""What ``idres mirror …`` does against a node's data directory or DSN: add, remove and list mirrors, and
read their status. A running node takes an added or removed mirror in within seconds (the change is
logged like a home or unhome; one of its processes takes the mirror's lease)."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

from registry.errors import ConfigurationError
from registry.model import ValueRef, fold
from registry.pg import mirrors
from registry.pg.mirrors import Mirror

from ..config import Settings
from ..replication.status import node_status
from ..resolution.upstream import trust_anchor
from .provisioning import node_pool

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def check_origin(origin: str, user: str | None) -> str:
    """The origin's base URL; credentials go over HTTPS only, except to this machine."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"--from must be the base URL of a node, http:// or https://, not {origin!r}")
    if user is not None and parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ConfigurationError(f"credentials go over HTTPS only: use an https:// URL, not {origin}")
    return origin.rstrip("/")


def check_user(user: str | None, secret: str | None) -> None:
    if (user is None) != (secret is None):
        raise ConfigurationError("give --user and --password-file together")
    if user is not None:
        try:
            ValueRef.parse(user)
        except Exception:
            raise ConfigurationError(f"--user {user!r} is not an identity of the form index:prefix/suffix") from None


def check_certificates(ca_pem: bytes | None, source: str) -> None:
    if ca_pem is None:
        return
    try:
        ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{source} holds no PEM certificate: {exc}") from None


async def add_mirror(settings: Settings, prefix: str, origin: str, *, user: str | None = None, secret: str | None = None,
                     trust_root: bytes | None = None, ca_pem: bytes | None = None, tls_verify: bool = True) -> Mirror:
    check_user(user, secret)
    origin = check_origin(origin, user)
    if trust_root is not None:
        trust_anchor(trust_root, settings.signing.trust_root_handle, "given with --trust-root")
    async with node_pool(settings) as pool, pool.acquire() as conn:
        await mirrors.add(conn, prefix, origin, username=user, secret=secret, trust_root=trust_root, ca_pem=ca_pem,
                          tls_verify=tls_verify)
        added = await mirrors.get(conn, prefix)
    assert added is not None
    return added


async def remove_mirror(settings: Settings, prefix: str) -> bool:
    async with node_pool(settings) as pool, pool.acquire() as conn:
        return await mirrors.remove(conn, prefix)


async def list_mirrors(settings: Settings) -> list[Mirror]:
    async with node_pool(settings) as pool:
        return await mirrors.every(pool)


async def mirror_status(settings: Settings, prefix: str | None = None) -> dict[str, Any]:
    async with node_pool(settings) as pool, pool.acquire() as conn:
        return await node_status(conn, settings, fold(prefix) if prefix else None)
