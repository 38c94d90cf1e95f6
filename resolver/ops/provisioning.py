"""What operators set up directly in the store: homed prefixes and prefix admins.

These run from the command line against the data directory or DSN, with the operator's database
access as their authority, so they do not go through HTTP authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from typing import AsyncIterator

from dataclasses import dataclass

import asyncpg

from registry.errors import ConfigurationError, HandleAlreadyExists, IdresError, PrefixNotHomed
from registry.model import Handle, HandleValue, Record, ValueRef, fold, prefix_record_handle
from registry.permissions import AdminGrant, AdminPermission
from registry.pg import db
from registry.pg.embedded import EmbeddedPostgres
from registry.pg.migrate import check_schema
from registry.pg.store import Store
from registry.values import ADMIN, SECKEY, VLIST, admin_to_bytes, vlist_from_bytes, vlist_to_bytes

from ..config import Settings
from ..core.authority import AuthoritySnapshot, CurrentAuthority
from ..core.retry import retry_on_conflict
from ..core.seckeys import SecretHasher
from ..keys.keyring import Keyring
from ..keys.publication import prefix_record
from ..keys.sealing import NodeSealer
from ..keys.site import SiteDescription

ADMIN_GROUP_INDEX = 200
PREFIX_ADMIN_INDEX = 100
SECKEY_INDEX = 300
SECKEY_PERMISSIONS = 0x0C  # admin read + admin write: never shown to anonymous readers


SECRET_ALPHABET = string.ascii_letters + string.digits


def new_secret(length: int = 32) -> str:
    """A random secret key of letters and digits (about 190 bits): safe on command lines and in URLs."""
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class AdminIdentity:
    identity: ValueRef
    secret: str


def node_keyring(settings: Settings, now: int) -> Keyring | None:
    """The node's keyring, with a first key made if signing is on and there is none yet (for a node
    whose database has no prefix records yet; ``idres serve`` uses ``key_publication.first_key``)."""
    if not settings.signing.enabled:
        return None
    keyring = Keyring(settings.keys_path)
    if not keyring.entries:
        keyring.generate(settings.signing.key_algorithm, now)
    return keyring


async def open_store(settings: Settings, pool: asyncpg.Pool, keyring: Keyring | None) -> Store:
    """A store that signs what it writes, as the node's own does."""
    if keyring is None:
        return Store(pool)
    authority = CurrentAuthority(AuthoritySnapshot(await Store(pool).homed_prefixes()))
    return Store(pool, NodeSealer(keyring, authority, settings.signing.signature_lifetime))


@contextlib.asynccontextmanager
async def node_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The node's database (its embedded cluster, attached to if running, or the DSN), its schema checked."""
    embedded = EmbeddedPostgres(settings.storage.data_dir) if settings.storage.dsn is None else None
    dsn = await asyncio.to_thread(embedded.start) if embedded is not None else settings.storage.dsn
    try:
        pool = await db.create_pool(dsn, max_size=2)
        try:
            async with pool.acquire() as conn:
                await check_schema(conn)
            yield pool
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            embedded.stop()


@contextlib.asynccontextmanager
async def node_store(settings: Settings) -> AsyncIterator[tuple[Store, Keyring | None]]:
    """The node's database with a store that signs as the node does: what operator commands write is signed at once."""
    async with node_pool(settings) as pool:
        keyring = Keyring(settings.keys_path) if settings.signing.enabled else None
        yield await open_store(settings, pool, keyring), keyring


async def home_prefix(store: Store, site: SiteDescription, prefix: str, now: int, keyring: Keyring | None = None,
                      lifetime: int = 30 * 86400) -> bool:
    """Home a prefix here, creating its prefix record if absent; False if it was homed already."""
    origin = {fold(p): o for p, o in (await store.mirrored_prefixes()).items()}.get(fold(prefix))
    if origin is not None:
        raise ConfigurationError(f"prefix {prefix} is mirrored here from {origin}: run `idres mirror remove {prefix}` first")
    sealer = store.sealer if isinstance(store.sealer, NodeSealer) else None
    if sealer is not None:  # homed a moment early, so that the new prefix record is signed as it is written
        sealer.authority.replace(sealer.authority.snapshot.with_homed(prefix))
    try:
        return await store.home(prefix, prefix_record(site, keyring, prefix, now, lifetime))
    finally:
        if sealer is not None:
            sealer.authority.replace(AuthoritySnapshot(await store.homed_prefixes()))


def _group_grant(prefix: str) -> HandleValue:
    grant = AdminGrant(ValueRef(ADMIN_GROUP_INDEX, f"0.NA/{prefix}"), AdminPermission.all())
    return HandleValue(PREFIX_ADMIN_INDEX, ADMIN, admin_to_bytes(grant))


async def create_prefix_admin(store: Store, prefix: str, now: int, suffix: str = "ADMIN", index: int = SECKEY_INDEX,
                              hasher: SecretHasher | None = None) -> AdminIdentity:
    """Create ``<prefix>/<suffix>`` with a fresh secret key and make it an admin of the prefix.

    The prefix record gets an admin group (HS_VLIST at 200) holding the identity, and an HS_ADMIN at
    100 giving that group every permission, as Handle.Net deployments do.
    """
    if fold(prefix) not in {fold(p) for p in await store.homed_prefixes()}:
        raise PrefixNotHomed(f"prefix {prefix} is not homed here: run `idres prefix home {prefix}` first")
    handle = Handle.parse(f"{prefix}/{suffix}")
    identity = ValueRef(index, handle.text)
    secret = new_secret()
    record = Record(
        handle,
        (
            HandleValue(PREFIX_ADMIN_INDEX, ADMIN, _group_grant(prefix).data, timestamp=now),
            HandleValue(index, SECKEY, (hasher or SecretHasher()).hash(secret.encode()), permissions=SECKEY_PERMISSIONS,
                        timestamp=now),
        ),
    )
    try:
        await store.create(record)
    except HandleAlreadyExists:
        raise HandleAlreadyExists(f"{handle.text} already exists: choose another name with --handle", handle=handle.text) from None
    await retry_on_conflict(lambda: _join_admin_group(store, prefix, identity, now),
                            gave_up=f"the record 0.NA/{prefix} kept changing; run the command again")
    return AdminIdentity(identity, secret)


async def _join_admin_group(store: Store, prefix: str, identity: ValueRef, now: int) -> None:
    handle = prefix_record_handle(prefix)
    stored = await store.get(handle.key)
    if stored is None:
        raise IdresError(f"the prefix record {handle.text} is missing")
    record = stored.record
    group = record.value_at(ADMIN_GROUP_INDEX)
    members = vlist_from_bytes(group.data) if group is not None and group.type_key == VLIST else []
    if group is not None and group.type_key != VLIST:
        raise IdresError(f"{handle.text} has a {group.type} value at index {ADMIN_GROUP_INDEX}, where the admin group belongs")
    values = {v.index: v for v in record.values}
    values[ADMIN_GROUP_INDEX] = HandleValue(ADMIN_GROUP_INDEX, VLIST, vlist_to_bytes([*members, identity]), timestamp=now)
    if not any(v.type_key == ADMIN and v.data == _group_grant(prefix).data for v in record.values):
        index = PREFIX_ADMIN_INDEX if PREFIX_ADMIN_INDEX not in values else record.free_index(PREFIX_ADMIN_INDEX)
        values[index] = HandleValue(index, ADMIN, _group_grant(prefix).data, timestamp=now)
    await store.replace(record.with_values(values.values()), stored.version)
