"""Renewing signatures before they expire, in the background, a bounded batch per tick.

One process of a node renews at a time (a PostgreSQL advisory lock elects it). Each tick takes up to
``renew_batch`` records whose signature expires within ``signature_renew_before`` (or that have
none) and writes them again, unchanged but for HS_PUBKEY values still in an older layout (written
in Handle.Net's): the store's sealer signs the new version, the change log
records it, caches and followers pick it up (``on_renewed`` tells the serving process at once, with the
record's comparison key). Records this node does not sign (their prefix is no
longer homed) stay out of the queue until it is homed again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable

import asyncpg

from registry.pg.db import unavailable_on_driver_errors
from registry.errors import ConcurrentUpdate
from registry.model import Handle, Record
from registry.pubkeys import canonical_pubkey
from registry.values import PUBKEY
from registry.pg.store import Store

from ..core.periodic import every
from .sealing import NodeSealer

log = logging.getLogger(__name__)
RENEWAL_LOCK = 7310022


def in_current_layout(record: Record) -> Record:
    """The record with its HS_PUBKEY values in the layout idres writes now (Handle.Net's: RSA keys end with
    an int4 0), so that the new signature covers the bytes a Handle.Net verifier digests."""
    values = []
    for value in record.values:
        canonical = canonical_pubkey(value.data) if value.type_key == PUBKEY else None
        values.append(replace(value, data=canonical) if canonical is not None and canonical != value.data else value)
    return record.with_values(values)


class SignatureRenewer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: Store,
        sealer: NodeSealer,
        on_renewed: Callable[[str], None],
        *,
        renew_before: int,
        batch: int,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._store = store
        self._sealer = sealer
        self._on_renewed = on_renewed
        self._renew_before = renew_before
        self._batch = batch
        self._interval = interval
        self._clock = clock
        self.renewed = 0

    async def run(self) -> None:
        await every(self._interval, self.tick_if_leader, lambda exc: log.warning("signature renewal skipped a tick: %s", exc.message))

    async def tick_if_leader(self) -> int | None:
        """Run one tick if no other process of this node is renewing; None if another one is."""
        with unavailable_on_driver_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RENEWAL_LOCK):
                    return None
                return await self.tick()

    async def tick(self) -> int:
        """Re-sign up to one batch of records due for renewal; returns how many were re-signed."""
        now = int(self._clock())
        renewed = 0
        if self._sealer.keyring.active is None:
            return 0
        for key in await self._store.due_for_signing(now + self._renew_before, self._batch):
            renewed += await self._renew(key, now)
        self.renewed += renewed
        if renewed:
            log.info("renewed the signatures of %d records", renewed)
        return renewed

    async def _renew(self, key: str, now: int) -> int:
        stored = await self._store.get(key)
        if stored is None:
            return 0
        record = stored.record
        if self._sealer.identity_for(record.handle) is None:
            return 0  # homed or unhomed a moment ago: this process's view catches up from the change log
        try:
            await self._store.replace(in_current_layout(record), stored.version)
        except ConcurrentUpdate:
            return 0  # written meanwhile, and so signed anew
        self._on_renewed(Handle.parse(stored.handle, max_length=10**6).key)
        return 1
