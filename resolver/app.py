"""Builds the aiohttp application of one serving process and owns the lifecycles of its parts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

import asyncpg
from aiohttp import web

from registry import db
from registry.migrate import check_schema
from registry.store import Store

from . import api
from .auth import Authority
from .cache import TtlPolicy
from .config import Settings
from .engine import Engine, HomedPrefixes
from .http_signatures import ResponseSigner
from .invalidation import ChangeFollower
from .keyring import Keyring
from .node import NODE, Node
from .registrar import Registrar
from .renewal import SignatureRenewer
from .sealing import NodeSealer
from .site import site_of

log = logging.getLogger(__name__)


def build_engine(settings: Settings, store: Store, prefixes: HomedPrefixes) -> Engine:
    return Engine(
        store,
        prefixes,
        policy=TtlPolicy(settings.cache_min_ttl, settings.cache_max_ttl, settings.cache_negative_ttl),
        max_entries=settings.cache_max_entries,
        max_bytes=settings.cache_max_bytes,
        negative_max_entries=settings.cache_negative_max_entries,
        enabled=settings.cache_enabled,
    )


def build_node(settings: Settings, pool: asyncpg.Pool, prefixes: HomedPrefixes) -> Node:
    """Every part of a serving process, wired: store (signing when enabled), engine, auth, registrar."""
    keyring = Keyring(settings.keys_path)
    sealer = NodeSealer(keyring, prefixes, settings.signature_lifetime) if settings.signing else None
    store = Store(pool, sealer)
    engine = build_engine(settings, store, prefixes)
    authority = Authority(engine, settings.server_admin_refs)
    registrar = Registrar(
        store,
        engine,
        authority,
        prefix_admins_manage_handles=settings.prefix_admins_manage_handles,
        allow_list_handles=settings.allow_list_handles,
        max_handle_length=settings.max_handle_length,
    )
    node = Node(settings, store, engine, authority, registrar, site_of(settings, keyring), keyring)
    if sealer is not None:
        node.response_signer = ResponseSigner(keyring, settings.http_signature_lifetime)
        node.renewer = SignatureRenewer(
            pool, store, sealer, engine,
            renew_before=settings.signature_renew_before, batch=settings.renew_batch, interval=settings.renew_interval,
        )
    return node


def create_app(settings: Settings, dsn: str) -> web.Application:
    """The application; its database pool, cache follower, renewer and node are set up when it starts."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    api.add_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        pool = await db.create_pool(dsn, min_size=1, max_size=settings.db_pool_size, command_timeout=settings.db_timeout)
        async with pool.acquire() as conn:
            await check_schema(conn)
        node = build_node(settings, pool, HomedPrefixes(await Store(pool).homed_prefixes()))
        # The follower keeps the cache and the homed prefixes coherent (the latter even with the cache off).
        node.engine.set_enabled(False)  # until the follower has a cursor
        node.follower = ChangeFollower(dsn, node.engine, node.registrar.reload_prefixes, settings.cache_poll_interval)
        tasks = [asyncio.create_task(node.follower.run(), name="change-follower")]
        if node.renewer is not None:
            tasks.append(asyncio.create_task(node.renewer.run(), name="signature-renewer"))
        app[NODE] = node
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if node.follower is not None:
                await node.follower.close()
            await pool.close()

    app.cleanup_ctx.append(lifecycle)
    return app
