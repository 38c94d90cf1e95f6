"""Preparing a node's database before it serves: the schema, the first signing key and its publication,
and the demo data set when asked."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from registry.pg import db
from registry.pg.migrate import check_schema, current_version, migrate

from ..config import Settings
from ..keys.keyring import Keyring
from ..keys.publication import first_key, publish_keys
from ..keys.site import site_of
from .demo import seed_demo
from .provisioning import AdminIdentity, open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    demo_admin: AdminIdentity | None


async def prepare_database(settings: Settings, dsn: str, embedded: bool) -> Prepared:
    """Check the schema (creating it in a new embedded database), make and publish the node's key,
    and seed the demo if asked."""
    async with db.connection(dsn) as conn:
        if embedded and await current_version(conn) == 0:
            applied = await migrate(conn)
            log.info("created the idres schema in the new embedded database (%d migrations)", len(applied))
        await check_schema(conn)
    now = int(time.time())
    keyring = Keyring(settings.keys_path) if settings.signing.enabled else None
    pool = await db.create_pool(dsn, max_size=2)
    try:
        store = await open_store(settings, pool, keyring)
        if keyring is not None:
            await first_key(store, keyring, settings.signing.key_algorithm, now)
            await publish_keys(store, keyring, now, settings.signing.signature_lifetime)
        demo = settings.operation.demo
        admin = await seed_demo(store, site_of(settings, keyring), now, keyring=keyring) if demo else None
    finally:
        await pool.close()
    return Prepared(admin)
