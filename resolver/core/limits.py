"""Rate limits on writes and on failed logins, per identity and per client address, shared by the
processes of a node through counters in the store (fixed windows of ``window`` seconds).

Failed logins are counted in the store as they happen, and a login that would cost a key derivation
or a signature check first asks the store whether its identity or address is over the limit: exact
across processes. Writes are too many to pay a round trip each: every process counts its own and, every
``sync_interval`` seconds, adds them to the shared counters and reads the totals back. A process admits
a write while the last totals plus its own writes since stay under the limit, so a node with P
processes admits at most ``limit + (P - 1) × (what one process admits in sync_interval)`` per window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from registry.errors import IdresError, TooManyRequests
from registry.model import ValueRef
from registry.pg import limits as shared

from .callers import Caller

log = logging.getLogger(__name__)
MAX_SYNC_DELAY = 5.0  # seconds between tries to share counts while the database is away


class Counters(Protocol):
    async def add(self, keys: Sequence[str], started: int, increments: Sequence[int]) -> dict[str, int]: ...

    async def counts(self, keys: Sequence[str], started: int) -> dict[str, int]: ...

    async def prune(self, before: int) -> None: ...


@dataclass(frozen=True)
class LimitSettings:
    window: int = 60
    writes_per_identity: int = 0
    writes_per_address: int = 0
    failed_logins_per_identity: int = 0
    failed_logins_per_address: int = 0
    sync_interval: float = 0.2


def _identity_key(identity: ValueRef) -> str:
    index, handle = identity.key
    return f"{index}:{handle}"


class RateLimits:
    def __init__(self, counters: Counters, settings: LimitSettings, clock: Callable[[], float] = time.time) -> None:
        self._counters = counters
        self._settings = settings
        self._clock = clock
        self._started = 0
        self._pending: dict[str, int] = {}
        self._totals: dict[str, int] = {}
        self._blocked: dict[str, float] = {}

    def _window(self) -> tuple[int, int]:
        """(start of the current window, seconds until it ends)."""
        now = self._clock()
        started = int(now // self._settings.window * self._settings.window)
        if started != self._started:
            self._started, self._pending, self._totals = started, {}, {}
        return started, max(1, math.ceil(started + self._settings.window - now))

    def _write_keys(self, caller: Caller, address: str | None) -> list[tuple[str, int]]:
        s = self._settings
        keys = [(f"write:id:{_identity_key(caller.identity)}", s.writes_per_identity)]
        if address:
            keys.append((f"write:ip:{address}", s.writes_per_address))
        return [(key, limit) for key, limit in keys if limit > 0]

    async def check_writes(self, caller: Caller, address: str | None, count: int = 1) -> None:
        """Count ``count`` writes of ``caller`` from ``address``; TooManyRequests (nothing counted) if over."""
        keys = self._write_keys(caller, address)
        if not keys:
            return
        _, retry_after = self._window()
        for key, limit in keys:
            if self._totals.get(key, 0) + self._pending.get(key, 0) + count > limit:
                who = "identity" if key.startswith("write:id:") else "address"
                raise TooManyRequests(f"too many writes from this {who}: at most {limit} every {self._settings.window} s; "
                                      f"try again in {retry_after} s", retry_after=retry_after)
        for key, _ in keys:
            self._pending[key] = self._pending.get(key, 0) + count

    async def sync(self) -> None:
        """Add this process's writes to the shared counters and learn the totals of every process."""
        started, _ = self._window()
        keys = sorted(set(self._pending) | set(self._totals))
        if not keys:
            return
        pending, self._pending = self._pending, {}
        try:
            totals = await self._counters.add(keys, started, [pending.get(k, 0) for k in keys])
        except IdresError:
            for key, n in pending.items():  # kept for the next sync
                self._pending[key] = self._pending.get(key, 0) + n
            raise
        if started == self._started:
            self._totals.update(totals)

    async def run(self) -> None:
        """Sync every ``sync_interval`` seconds, and forget old windows now and then. While syncs fail (the
        database away), the counts are kept, the log says so once, and syncs are tried less often."""
        ticks, delay, failing = 0, self._settings.sync_interval, False
        while True:
            await asyncio.sleep(delay)
            try:
                await self.sync()
                ticks += 1
                if ticks % 1000 == 0:
                    await self._counters.prune(self._started - self._settings.window)
            except IdresError as exc:
                if not failing:
                    log.warning("could not share rate-limit counts (kept until the next sync): %s", exc.message)
                failing, delay = True, min(delay * 2, MAX_SYNC_DELAY)
                continue
            if failing:
                log.info("rate-limit counts shared again")
            failing, delay = False, self._settings.sync_interval

    # --- failed logins ---------------------------------------------------------------------------

    def _login_keys(self, identity: ValueRef | None, address: str | None) -> list[tuple[str, int]]:
        s = self._settings
        keys = []
        if identity is not None:
            keys.append((f"fail:id:{_identity_key(identity)}", s.failed_logins_per_identity))
        if address:
            keys.append((f"fail:ip:{address}", s.failed_logins_per_address))
        return [(key, limit) for key, limit in keys if limit > 0]

    def _refuse_login(self, retry_after: int) -> TooManyRequests:
        return TooManyRequests(f"too many failed logins; try again in {retry_after} s", retry_after=retry_after)

    async def check_login(self, identity: ValueRef | None, address: str | None) -> None:
        """TooManyRequests if the identity or the address failed to log in too often in this window."""
        keys = self._login_keys(identity, address)
        if not keys:
            return
        started, retry_after = self._window()
        now = self._clock()
        if any(self._blocked.get(key, 0) > now for key, _ in keys):
            raise self._refuse_login(retry_after)
        found = await self._counters.counts([k for k, _ in keys], started)
        if any(found.get(key, 0) >= limit for key, limit in keys):
            raise self._refuse_login(retry_after)

    async def failed_login(self, identity: ValueRef | None, address: str | None) -> None:
        """Count a failed login; TooManyRequests when it reaches a limit (the caller answers 429, not 401)."""
        keys = self._login_keys(identity, address)
        if not keys:
            return
        started, retry_after = self._window()
        totals = await self._counters.add([k for k, _ in keys], started, [1] * len(keys))
        over = [key for key, limit in keys if totals.get(key, 0) >= limit]
        for key in over:
            self._blocked[key] = started + self._settings.window
        if over:
            raise self._refuse_login(retry_after)


class PoolCounters:
    """``Counters`` over the store's pool (registry.pg.limits)."""

    def __init__(self, pool) -> None:
        self._pool = pool

    async def add(self, keys: Sequence[str], started: int, increments: Sequence[int]) -> dict[str, int]:
        return await shared.add(self._pool, keys, started, increments)

    async def counts(self, keys: Sequence[str], started: int) -> dict[str, int]:
        return await shared.counts(self._pool, keys, started)

    async def prune(self, before: int) -> None:
        await shared.prune(self._pool, before)
