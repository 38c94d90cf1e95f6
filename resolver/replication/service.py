"""The replication parts of one serving process, wired: the feed, snapshots and their access rule, the
mirrors it may follow, the pruning of the change log, and the status of it all."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Sequence

import aiohttp
import asyncpg

from registry.model import Handle, HandleValue

from ..config import Settings
from ..core.authority import CurrentAuthority
from ..core.rights import Rights
from ..resolution.engine import Engine
from ..resolution.upstream import Upstream, open_session
from . import seals
from .access import SyncAccess
from .feed import ChangeBell, FeedService
from .mirroring import Mirroring
from .retention import ChangeLogPruner
from .snapshot import SnapshotService
from .status import node_status


@dataclass
class Replication:
    settings: Settings
    pool: asyncpg.Pool
    bell: ChangeBell
    feed: FeedService
    snapshots: SnapshotService
    access: SyncAccess
    pruner: ChangeLogPruner
    mirroring: Mirroring | None = None
    session: aiohttp.ClientSession | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    def start(self) -> list[asyncio.Task]:
        self._tasks = [asyncio.create_task(self.pruner.run(), name="change-log-pruner")]
        if self.mirroring is not None:
            self._tasks.append(asyncio.create_task(self.mirroring.run(), name="mirroring"))
        return list(self._tasks)

    async def close(self) -> None:
        if self.mirroring is not None:
            await self.mirroring.close()
        if self.session is not None:
            await self.session.close()

    async def status(self) -> dict[str, Any]:
        """The feed this node serves, and every mirror it keeps."""
        async with self.pool.acquire() as conn:
            return {"responseCode": 1, **await node_status(conn, self.settings)}


def build_replication(settings: Settings, dsn: str, pool: asyncpg.Pool, authority: CurrentAuthority, rights: Rights,
                      engine: Engine, sealer: seals.Sealer | None, upstream: Upstream | None) -> Replication:
    replication = settings.replication
    bell = ChangeBell()
    access = SyncAccess(rights, engine.record_of, authority, replication.sync_identity_refs)
    pruner = ChangeLogPruner(pool, retention=replication.sync_retention, batch=replication.sync_prune_batch,
                             interval=replication.sync_prune_interval)
    parts = Replication(settings, pool, bell, FeedService(pool, bell), SnapshotService(pool, sealer, seal=replication.sync_seal),
                        access, pruner)
    if upstream is not None:
        parts.session = open_session(settings.resolution.upstream_connections)

        async def remote(origin: str, handle: Handle) -> Sequence[HandleValue] | None:
            answered = await upstream.ask(handle, [origin.rstrip("/")], (), serving=f"the origin {origin}", verify=False)
            return answered.record.values if answered.record is not None else None

        parts.mirroring = Mirroring(settings, dsn, pool, authority, parts.session, remote)
    return parts
