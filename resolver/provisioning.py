"""What operators set up directly in the store: homed prefixes, prefix admins, the demo data set.

These run from the command line against the data directory or DSN, with the operator's database
access as their authority, so they do not go through HTTP authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from typing import AsyncIterator

import asyncpg
from dataclasses import dataclass

from registry import db
from registry.embedded import EmbeddedPostgres
from registry.migrate import check_schema
from registry.errors import ConcurrentUpdate, HandleAlreadyExists, IdresError, PrefixNotHomed
from registry.model import Handle, HandleValue, Record, ValueRef, fold, prefix_record_handle
from registry.permissions import AdminGrant, AdminPermission
from registry.store import Store
from registry.values import ADMIN, PUBKEY, SECKEY, VLIST, admin_to_bytes, vlist_from_bytes, vlist_to_bytes

from .config import Settings
from .engine import HomedPrefixes
from .keyring import Keyring
from .sealing import NodeSealer
from .site import SiteDescription, key_bytes

ADMIN_GROUP_INDEX = 200
PREFIX_ADMIN_INDEX = 100
SECKEY_INDEX = 300
SECKEY_PERMISSIONS = 0x0C  # admin read + admin write: never shown to anonymous readers
DEMO_PREFIX = "88.101.5"


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
    if not settings.signing:
        return None
    keyring = Keyring(settings.keys_path)
    if not keyring.entries:
        keyring.generate(settings.key_algorithm, now)
    return keyring


async def open_store(settings: Settings, pool: asyncpg.Pool, keyring: Keyring | None) -> Store:
    """A store that signs what it writes, as the node's own does."""
    if keyring is None:
        return Store(pool)
    prefixes = HomedPrefixes(await Store(pool).homed_prefixes())
    return Store(pool, NodeSealer(keyring, prefixes, settings.signature_lifetime))


@contextlib.asynccontextmanager
async def node_store(settings: Settings) -> AsyncIterator[tuple[Store, Keyring | None]]:
    """The node's database (its embedded cluster, attached to if running, or the DSN) with a store that
    signs as the node does: what operator commands write is signed at once."""
    embedded = EmbeddedPostgres(settings.data_dir) if settings.dsn is None else None
    dsn = await asyncio.to_thread(embedded.start) if embedded is not None else settings.dsn
    try:
        pool = await db.create_pool(dsn, max_size=2)
        try:
            async with pool.acquire() as conn:
                await check_schema(conn)
            keyring = Keyring(settings.keys_path) if settings.signing else None
            yield await open_store(settings, pool, keyring), keyring
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            embedded.stop()


def prefix_record(site: SiteDescription, keyring: Keyring | None, prefix: str, now: int, lifetime: int) -> Record:
    """The record ``0.NA/<prefix>`` starts with: this node's HS_SITE and the HS_PUBKEY of its keys."""
    record = site.prefix_record(prefix, now)
    keys = [] if keyring is None else [
        HandleValue(e.index, PUBKEY, key_bytes(keyring, e.kid), timestamp=now) for e in keyring.published(now, lifetime)
    ]
    return record.with_values([*record.values, *keys])


async def home_prefix(store: Store, site: SiteDescription, prefix: str, now: int, keyring: Keyring | None = None,
                      lifetime: int = 30 * 86400) -> bool:
    """Home a prefix here, creating its prefix record if absent; False if it was homed already."""
    if isinstance(store.sealer, NodeSealer):
        store.sealer.prefixes.add(prefix)  # so that the new prefix record is signed as it is written
    try:
        return await store.home(prefix, prefix_record(site, keyring, prefix, now, lifetime))
    finally:
        if isinstance(store.sealer, NodeSealer):
            store.sealer.prefixes.replace(await store.homed_prefixes())


def _group_grant(prefix: str) -> HandleValue:
    grant = AdminGrant(ValueRef(ADMIN_GROUP_INDEX, f"0.NA/{prefix}"), AdminPermission.all())
    return HandleValue(PREFIX_ADMIN_INDEX, ADMIN, admin_to_bytes(grant))


async def create_prefix_admin(store: Store, prefix: str, now: int, suffix: str = "ADMIN", index: int = SECKEY_INDEX) -> AdminIdentity:
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
            HandleValue(index, SECKEY, secret.encode(), permissions=SECKEY_PERMISSIONS, timestamp=now),
        ),
    )
    try:
        await store.create(record)
    except HandleAlreadyExists:
        raise HandleAlreadyExists(f"{handle.text} already exists: choose another name with --handle", handle=handle.text) from None
    for _ in range(5):
        try:
            await _join_admin_group(store, prefix, identity, now)
            return AdminIdentity(identity, secret)
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"the record 0.NA/{prefix} kept changing; run the command again")


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


async def seed_demo(store: Store, site: SiteDescription, now: int, count: int = 5000, keyring: Keyring | None = None) -> AdminIdentity:
    """Home the demo prefix with ``count`` sample product identifiers and an admin; idempotent."""
    await home_prefix(store, site, DEMO_PREFIX, now, keyring)
    admin_handle = Handle.parse(f"{DEMO_PREFIX}/ADMIN")
    existing = await store.get(admin_handle.key)
    if existing is None:
        admin = await create_prefix_admin(store, DEMO_PREFIX, now)
    else:
        key = existing.record.value_at(SECKEY_INDEX)
        admin = AdminIdentity(ValueRef(SECKEY_INDEX, admin_handle.text), key.data.decode() if key else "")
    total, _ = await store.list_handles(DEMO_PREFIX, limit=0)
    if total <= 1:
        await store.bulk_create(demo_record(n, now) for n in range(1, count + 1))
    return admin


def demo_record(n: int, now: int) -> Record:
    """A sample product identifier: a product page, a model, a batch and a production date."""
    handle = Handle.parse(f"{DEMO_PREFIX}/SN-{n:06d}")
    admin = AdminGrant(ValueRef(ADMIN_GROUP_INDEX, f"0.NA/{DEMO_PREFIX}"), AdminPermission.from_bits("011111110011"))
    values = (
        HandleValue(1, "URL", f"https://products.example.com/washers/SN-{n:06d}".encode(), timestamp=now),
        HandleValue(2, "MODEL", f"WM-{700 + n % 5}0".encode(), timestamp=now),
        HandleValue(3, "BATCH", f"B2026-{n // 500:03d}".encode(), timestamp=now),
        HandleValue(4, "PRODUCTION_DATE", f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}".encode(), timestamp=now),
        HandleValue(PREFIX_ADMIN_INDEX, ADMIN, admin_to_bytes(admin), timestamp=now),
    )
    return Record(handle, values)
