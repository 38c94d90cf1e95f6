"""Which process of a node follows which mirrored prefix, and the followers it runs.

Every worker runs a ``Mirroring`` task. Every ``mirror_poll_interval`` seconds it compares the mirrored
prefixes of the authority snapshot (which the change follower reloads when ``idres mirror add`` or
``remove`` logs a change) with the followers it runs. For a mirror nobody follows it opens a connection
and takes the mirror's lease, a session advisory lock (``mirrors.lease_key``): the one process that gets
it follows the mirror on that connection; the others keep asking, and one of them takes over within an
interval if that process dies (its lock goes with its connection). A removed mirror's follower is
stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence

import aiohttp
import asyncpg

from registry.errors import ConfigurationError, IdresError
from registry.model import Handle, HandleValue, fold
from registry.pg import db, mirrors
from registry.pg.mirrors import Mirror

from ..config import Settings
from ..core.authority import CurrentAuthority, Mirrored
from ..resolution.upstream import load_trust_anchor, trust_anchor
from .checks import RecordChecks
from .client import OriginClient
from .follower import MirrorFollower

log = logging.getLogger(__name__)
_HELD = """
SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid::bigint = $1 AND objid::bigint = $2)
"""

RemoteRecord = Callable[[str, Handle], Awaitable["Sequence[HandleValue] | None"]]


def owner_of(authority: CurrentAuthority, prefix: str) -> Callable[[str], bool]:
    """Whether a record (comparison key) is the mirror of ``prefix``'s to write: a handle under it, or a prefix
    record this node answers for from that mirror (not one it keeps as the parent of the prefix)."""
    under = prefix + "/"

    def owns(key: str) -> bool:
        if key.startswith(under):
            return True
        try:
            answer = authority.snapshot.answer_for(Handle.parse(key, max_length=10**4))
        except IdresError:
            return False
        return isinstance(answer, Mirrored) and fold(answer.prefix) == prefix

    return owns


@dataclass
class _Following:
    task: asyncio.Task
    conn: asyncpg.Connection
    follower: MirrorFollower
    origin: str


class Mirroring:
    def __init__(self, settings: Settings, dsn: str, pool: asyncpg.Pool, authority: CurrentAuthority,
                 session: aiohttp.ClientSession, remote: RemoteRecord) -> None:
        self._settings = settings
        self._dsn = dsn
        self._pool = pool
        self._authority = authority
        self._session = session
        self._remote = remote
        self.following: dict[str, _Following] = {}
        self._refused: dict[str, str] = {}

    async def run(self) -> None:
        try:
            while True:
                await self.tick()
                await asyncio.sleep(self._settings.replication.mirror_poll_interval)
        finally:
            await self.close()

    async def tick(self) -> None:
        """Stop the followers of removed mirrors (or that ended, or whose origin changed), and take the leases
        of the mirrors nobody follows."""
        wanted = {fold(m.prefix): m.origin for m in self._authority.snapshot.mirrored()}
        for key in list(self.following):
            following = self.following[key]
            if wanted.get(key) != following.origin or following.task.done():
                await self._stop(key)
        for key in sorted(set(wanted) - set(self.following)):
            try:
                await self._try_to_follow(key)
            except (IdresError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("mirror of %s: cannot take the lease now: %s", key, exc)

    async def _try_to_follow(self, key: str) -> None:
        lease = mirrors.lease_key(key)
        with db.unavailable_on_driver_errors():
            if await self._pool.fetchval(_HELD, (lease >> 32) & 0xFFFFFFFF, lease & 0xFFFFFFFF):
                return  # another process follows it
        conn = await db.connect(self._dsn)
        try:
            mirror = await mirrors.get(conn, key) if await conn.fetchval("SELECT pg_try_advisory_lock($1)", lease) else None
            if mirror is None:
                await conn.close()
                return
            follower = self._follower(mirror, conn)
            await mirrors.following(conn, key, follower.verification)
        except ConfigurationError as exc:
            await self._refuse(conn, key, exc.message)
            return
        except BaseException:
            conn.terminate()
            raise
        task = asyncio.create_task(self._follow(key, follower), name=f"mirror-{key}")
        self.following[key] = _Following(task, conn, follower, mirror.origin)

    async def _refuse(self, conn: asyncpg.Connection, key: str, message: str) -> None:
        """A mirror that cannot be followed as configured: said once in the log, and in its status."""
        if self._refused.get(key) != message:
            log.error("mirror of %s cannot be followed: %s", key, message)
            self._refused[key] = message
        try:
            await mirrors.note(conn, key, error=message)
        finally:
            await conn.close()

    def _follower(self, mirror: Mirror, conn: asyncpg.Connection) -> MirrorFollower:
        settings = self._settings
        replication = settings.replication
        client = OriginClient(self._session, mirror, timeout=replication.mirror_timeout, gzip=replication.mirror_gzip,
                              node_name=settings.node_name)
        checks = RecordChecks(mirror.prefix, self._anchor(mirror), lambda handle: self._remote(mirror.origin, handle),
                              seals_suffice=replication.mirror_verify == "sealed")
        return MirrorFollower(mirror, conn, client, checks, owner_of(self._authority, mirror.prefix), replication)

    def _anchor(self, mirror: Mirror):
        root_handle = self._settings.signing.trust_root_handle
        if mirror.trust_root is not None:
            return trust_anchor(mirror.trust_root, root_handle, f"of the mirror of {mirror.spelled}")
        path = self._settings.resolution.trust_root
        return load_trust_anchor(path, root_handle) if path is not None else None

    async def _follow(self, key: str, follower: MirrorFollower) -> None:
        log.info("mirror of %s: this process follows it", key)
        try:
            await follower.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the lease is given up; the next tick takes it again (or another process does)
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            log.warning("mirror of %s: this process stops following it: %s", key, message)

    async def _stop(self, key: str) -> None:
        following = self.following.pop(key)
        following.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await following.task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(following.conn.close(), 5)
        if not following.conn.is_closed():
            following.conn.terminate()

    async def close(self) -> None:
        for key in list(self.following):
            await self._stop(key)
