"""Builds the aiohttp application of one serving process and owns the lifecycles of its parts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from aiohttp import web

from registry import db
from registry.migrate import check_schema
from registry.store import Store

from . import api
from .auth import Authority
from .cache import TtlPolicy
from .config import Settings
from .engine import Engine, HomedPrefixes
from .invalidation import ChangeFollower
from .node import NODE, Node
from .registrar import Registrar
from .site import SiteDescription

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


def build_node(settings: Settings, store: Store, prefixes: HomedPrefixes) -> Node:
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
    return Node(settings, store, engine, authority, registrar, SiteDescription(settings))


def create_app(settings: Settings, dsn: str) -> web.Application:
    """The application; its database pool, cache follower and node are set up when it starts."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    api.add_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        pool = await db.create_pool(dsn, min_size=1, max_size=settings.db_pool_size, command_timeout=settings.db_timeout)
        async with pool.acquire() as conn:
            await check_schema(conn)
        store = Store(pool)
        node = build_node(settings, store, HomedPrefixes(await store.homed_prefixes()))
        follower_task = None
        if settings.cache_enabled:
            node.engine.set_enabled(False)  # until the follower has a cursor
            node.follower = ChangeFollower(dsn, node.engine, node.registrar.reload_prefixes, settings.cache_poll_interval)
            follower_task = asyncio.create_task(node.follower.run(), name="change-follower")
        app[NODE] = node
        try:
            yield
        finally:
            if follower_task is not None:
                follower_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower_task
                await node.follower.close()
            await pool.close()

    app.cleanup_ctx.append(lifecycle)
    return app
