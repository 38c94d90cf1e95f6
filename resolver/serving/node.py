"""The objects one serving process is made of, wired once, with their lifecycle. No aiohttp.

``Node.open`` connects to the database and builds every part; ``start`` runs the background tasks (the
change follower that keeps cache and authority coherent, the signature renewer); ``close`` stops them
and the pool. Transports (``http``, later ``native``) are handed the node and reach its parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from registry.errors import IdresError
from registry.model import fold
from registry.pg import db
from registry.pg.embedded import EmbeddedPostgres
from registry.pg.migrate import check_schema
from registry.pg.statistics import HourCounts, read_counts
from registry.pg.store import Store

from ..config import Settings
from ..core.authority import CurrentAuthority
from ..core.health import DatabaseHealth
from ..core.limits import LimitSettings, PoolCounters, RateLimits
from ..core.rights import Rights
from ..core.sessions import Sessions
from ..core.seckeys import SecretHasher
from ..keys.keyring import Keyring
from ..keys.renewal import SignatureRenewer
from ..keys.sealing import NodeSealer
from ..keys.site import SiteDescription, site_of
from ..replication.service import Replication, build_replication
from ..resolution.batching import CoalescingSource
from ..resolution.cache import TtlPolicy
from ..resolution.engine import Engine
from ..resolution.forwarding import Forwarder
from ..resolution.invalidation import ChangeFollower
from ..resolution.keeper import AuthorityKeeper, load_snapshot
from ..resolution.upstream import Upstream, load_trust_anchor, open_session
from ..writes.batch import BatchLimits, BatchRunner
from .metrics import NodeMetrics, query_observer
from .statistics_flush import StatisticsFlusher
from ..writes.registrar import Registrar
from ..writes.secrets import hash_clear_secret

READY_TIMEOUT = 2.0
POOL_CLOSE_TIMEOUT = 10.0
CANCEL_GRACE = 1.0  # seconds a cancelled background task gets before it is cancelled again
log = logging.getLogger(__name__)


def build_engine(settings: Settings, store: Store, authority: CurrentAuthority) -> Engine:
    cache, resolution = settings.cache, settings.resolution
    return Engine(
        CoalescingSource(store),
        authority,
        policy=TtlPolicy(cache.min_ttl, cache.max_ttl, cache.negative_ttl),
        max_entries=cache.max_entries,
        max_bytes=cache.max_bytes,
        negative_max_entries=cache.negative_max_entries,
        enabled=cache.enabled,
        keep_expired=resolution.stale_window,
        refresh_interval=resolution.stale_refresh_interval,
        name=settings.node_name,
    )


def build_forwarder(settings: Settings, engine: Engine) -> Forwarder:
    """Recursive resolution through other nodes, wired to the engine (which it asks for chains and HS_SERV)."""
    resolution = settings.resolution
    anchor = load_trust_anchor(resolution.trust_root, settings.signing.trust_root_handle) if resolution.trust_root else None
    upstream = Upstream(
        open_session(resolution.upstream_connections), node_name=settings.node_name, timeout=resolution.upstream_timeout,
        deadline=resolution.upstream_deadline, max_hops=resolution.max_hops, anchor=anchor, certificates=engine.chain_values,
    )
    forwarder = Forwarder(upstream, root_urls=resolution.root_node, policy=engine.policy)
    forwarder.local, forwarder.anywhere = engine.record_of, engine.record_anywhere
    engine.forwarder = forwarder
    return forwarder


async def _stopped(task: asyncio.Task) -> None:
    """Cancel ``task`` until it ends. Python 3.11's ``asyncio.wait_for`` can swallow a cancellation that
    arrives as the awaited future completes, and a loop around it then goes on: cancel it again."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_GRACE)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


def rate_limits(settings: Settings, pool: asyncpg.Pool) -> RateLimits:
    s = settings.limits
    return RateLimits(PoolCounters(pool), LimitSettings(
        s.window, s.writes_per_identity, s.writes_per_address, s.failed_logins_per_identity,
        s.failed_logins_per_address, s.sync_interval))


def batch_limits(settings: Settings) -> BatchLimits:
    b = settings.batch
    return BatchLimits(b.max_items, b.max_line_bytes, b.chunk_size, b.idempotency_ttl, settings.requests.max_handle_length,
                       b.concurrency)


@dataclass
class Node:
    settings: Settings
    pool: asyncpg.Pool
    store: Store
    authority: CurrentAuthority
    engine: Engine
    rights: Rights
    registrar: Registrar
    keyring: Keyring
    keeper: AuthorityKeeper
    batches: BatchRunner
    sessions: Sessions
    limits: RateLimits
    health: DatabaseHealth = field(default_factory=DatabaseHealth)
    forwarder: Forwarder | None = None
    follower: ChangeFollower | None = None
    renewer: SignatureRenewer | None = None
    metrics: NodeMetrics | None = None
    statistics: StatisticsFlusher | None = None
    front_door: Any = None  # the worker's connections (serving.front_door), once it listens
    replication: Replication | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _site: SiteDescription | None = None
    _site_generation: int = -1

    @classmethod
    async def open(cls, settings: Settings, dsn: str, shared_metrics: Path | None = None) -> "Node":
        """Connect, check the schema and wire every part; nothing runs until ``start``. ``shared_metrics``:
        the directory where this node's worker processes share their metrics (None: this process alone)."""
        metrics = NodeMetrics(shared_metrics) if settings.observability.metrics else None
        # no floor of idle connections: asyncpg would try to restore it (and log each try) through an outage
        pool = await db.create_pool(dsn, min_size=0, max_size=settings.storage.db_pool_size,
                                    command_timeout=settings.storage.db_timeout,
                                    query_observer=query_observer(metrics) if metrics is not None else None)
        try:
            async with pool.acquire() as conn:
                await check_schema(conn)
            authority = CurrentAuthority(await load_snapshot(Store(pool)))
            node = cls.wire(settings, pool, authority, dsn)
        except BaseException:
            await pool.close()
            raise
        node.forwarder = build_forwarder(settings, node.engine)
        node.metrics = metrics
        if metrics is not None:
            metrics.attach(node)
        if settings.observability.statistics:
            node.statistics = StatisticsFlusher(pool, node.engine.statistics, settings.observability.statistics_flush_interval)
        node.replication = build_replication(settings, dsn, pool, authority, node.rights, node.engine, node.store.sealer,
                                             node.forwarder.upstream)
        if node.follower is not None:
            node.follower.listeners.append(node.replication.bell.ring)  # wakes the feed's long-polls
        return node

    @classmethod
    def wire(cls, settings: Settings, pool: asyncpg.Pool, authority: CurrentAuthority, dsn: str) -> "Node":
        keyring = Keyring(settings.keys_path)
        signing = settings.signing
        sealer = NodeSealer(keyring, authority, signing.signature_lifetime) if signing.enabled else None
        store = Store(pool, sealer)
        engine = build_engine(settings, store, authority)
        hasher = SecretHasher(settings.auth.seckey_iterations)

        async def clear_secret_found(ref, value, secret) -> None:  # hashed at its first use
            try:
                if await hash_clear_secret(store, hasher, ref, value, secret):
                    engine.invalidate(fold(ref.handle))
            except IdresError as exc:
                log.warning("could not hash the secret key %s: %s", ref, exc.message)

        rights = Rights(engine.record_of, settings.auth.server_admin_refs, clear_found=clear_secret_found)
        keeper = AuthorityKeeper(store, authority, engine.invalidate_all)
        registrar = Registrar(
            store, engine, rights, authority, keeper,
            prefix_admins_manage_handles=settings.auth.prefix_admins_manage_handles,
            allow_list_handles=settings.auth.allow_list_handles,
            max_handle_length=settings.requests.max_handle_length,
            hasher=hasher,
            identifier_policy=settings.identifiers.policy(),
        )
        limits = rate_limits(settings, pool)
        rights.limits = limits
        batches = BatchRunner(registrar.applier, registrar.authorizer, authority, batch_limits(settings))
        node = cls(settings, pool, store, authority, engine, rights, registrar, keyring, keeper, batches,
                   Sessions(pool, settings.auth.session_timeout), limits)
        # The follower keeps the cache and the authority coherent (the latter even with the cache off).
        node.follower = ChangeFollower(dsn, engine, keeper, settings.cache.poll_interval, node.health)
        if sealer is not None:
            node.renewer = SignatureRenewer(
                pool, store, sealer, engine.invalidate, renew_before=signing.signature_renew_before,
                batch=signing.renew_batch, interval=signing.renew_interval,
            )
        return node

    def start(self) -> None:
        """Run the change follower and the renewer; the cache is bypassed until the follower has a cursor."""
        self.engine.set_enabled(False)
        if self.follower is not None:
            self._tasks.append(asyncio.create_task(self.follower.run(), name="change-follower"))
        if self.renewer is not None:
            self._tasks.append(asyncio.create_task(self.renewer.run(), name="signature-renewer"))
        if self.metrics is not None:
            self._tasks.append(asyncio.create_task(self.metrics.run(), name="metrics"))
        if self.statistics is not None:
            self._tasks.append(asyncio.create_task(self.statistics.run(), name="statistics"))
        self._tasks.append(asyncio.create_task(self.limits.run(), name="rate-limit-sync"))
        if self.replication is not None:
            self._tasks.extend(self.replication.start())

    async def close(self) -> None:
        for task in self._tasks:
            await _stopped(task)
        self._tasks.clear()
        if self.statistics is not None:
            await self.statistics.flush()  # what was counted since the last flush
        if self.follower is not None:
            await self.follower.close()
        if self.replication is not None:
            await self.replication.close()
        if self.forwarder is not None:
            await self.forwarder.upstream.close()
        try:  # a connection still held (a query the database never answers) must not hold the shutdown
            async with asyncio.timeout(POOL_CLOSE_TIMEOUT):
                await self.pool.close()
        except TimeoutError:
            log.warning("database connections still busy after %.0f s at shutdown: closed forcibly", POOL_CLOSE_TIMEOUT)
            self.pool.terminate()

    def current_site(self) -> SiteDescription:
        """The HS_SITE of /api/site, following key rotations made while the node runs."""
        self.keyring.reload_if_changed()
        if self._site is None or self._site_generation != self.keyring.generation:
            self._site = site_of(self.settings, self.keyring)
            self._site_generation = self.keyring.generation
        return self._site

    def _embedded_state(self) -> dict | None:
        return EmbeddedPostgres(self.settings.storage.data_dir).read_state()

    async def read_statistics(self, prefixes: list[str], start: datetime, end: datetime) -> list[HourCounts]:
        """The hourly statistics of these prefixes; this process's latest counts stored first."""
        if self.statistics is not None:
            await self.statistics.flush()
        return await read_counts(self.pool, prefixes, start, end)

    async def readiness(self) -> dict[str, Any]:
        """Whether this process can serve: database reachable, cache coherent; with the figures behind it."""
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                database = await self.store.ping()
        except (IdresError, TimeoutError):
            database = False
        follower = self.follower is None or self.follower.connected
        return {
            "status": "ready" if database and follower else "unavailable",
            "pid": os.getpid(),
            "database": database,
            "databaseState": self.health.state(),
            "changeFollower": follower,
            **({"embeddedDatabase": self._embedded_state()} if self.settings.storage.dsn is None else {}),
            "homedPrefixes": len(self.authority.snapshot),
            "cache": self.engine.stats(),
        }
