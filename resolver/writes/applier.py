"""Applying a group of operations in one transaction: lock the rows, decide each operation in order,
sign the new versions, write them and log them together.

Operations on the same handle within a group see each other's effect, in order; each operation's
outcome is its own (an error for one leaves the others alone). A group that collides with another
transaction (a handle it creates was created meanwhile, or two groups waited on each other) is rolled
back and run again after a back-off. ``Combiner`` gathers concurrent single writes into such groups.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Sequence

from registry.identifiers import IdentifierPolicy
from registry.model import Handle, Record
from registry.pg.groups import RowWrite, WriteGroup
from registry.pg.store import Store
from registry.validation import ValueLimits

from ..core.callers import Caller
from ..core.retry import retry_on_conflict
from ..core.seckeys import SecretHasher
from .authorizer import Authorizer
from .operations import CREATIONS, InputChecks, Operation, Outcome, Planner

GROUP_ATTEMPTS = 12
Item = tuple[Operation, Caller]
Hook = Callable[[WriteGroup, list[Outcome]], Awaitable[None]]


class Applier:
    def __init__(self, store: Store, hasher: SecretHasher, *, clock: Callable[[], float] = time.time,
                 written: Callable[[str], None] = lambda key: None, created: Callable[[Handle], None] = lambda handle: None,
                 policy: IdentifierPolicy = IdentifierPolicy(), value_limits: ValueLimits = ValueLimits()) -> None:
        self.store = store
        self.hasher = hasher
        self._clock = clock
        self._written = written
        self._created = created
        self._checks = InputChecks(policy, value_limits)

    def planner(self, authorizer: Authorizer) -> Planner:
        return Planner(authorizer, self.hasher, self._checks, signs=self.store.sealer is not None, now=int(self._clock()))

    async def apply(self, items: Sequence[Item], authorizer: Authorizer, *, before: Hook | None = None,
                    after: Hook | None = None) -> list[Outcome]:
        """The outcomes of ``items``, applied in one transaction (retried whole on a collision).

        ``before(group, [])`` runs first in the transaction and ``after(group, outcomes)`` last, before
        the commit: a batch claims its chunk and records its results there, atomically with the writes."""
        outcomes = await retry_on_conflict(lambda: self._once(items, authorizer, before, after), attempts=GROUP_ATTEMPTS)
        for key in {op.handle.key for (op, _), o in zip(items, outcomes) if o.changed}:
            self._written(key)
        for (op, _), outcome in zip(items, outcomes):
            if outcome.changed and outcome.result is not None and outcome.result.created and op.kind in CREATIONS:
                self._created(op.handle)
        return outcomes

    async def _once(self, items: Sequence[Item], authorizer: Authorizer, before: Hook | None, after: Hook | None) -> list[Outcome]:
        planner = self.planner(authorizer)
        handles = {op.handle.key: op.handle for op, _ in items}
        async with self.store.group() as group:
            if before is not None:
                await before(group, [])
            stored = await group.lock(sorted(handles))
            state: dict[str, Record | None] = {key: s.record for key, s in stored.items()}
            outcomes, dirty = [], []
            for op, caller in items:
                outcome = await planner.apply(op, caller, state.get(op.handle.key))
                if outcome.changed:
                    state[op.handle.key] = outcome.record
                    dirty.append(op.handle.key)
                outcomes.append(outcome)
            await group.write(self._rows(dict.fromkeys(dirty), handles, state, set(stored)))
            if after is not None:
                await after(group, outcomes)
        return outcomes

    def _rows(self, dirty: dict[str, None], handles: dict[str, Handle], state: dict[str, Record | None],
              existed: set[str]) -> list[RowWrite]:
        keys = [key for key in dirty if state[key] is not None or key in existed]  # not: created and deleted again
        sealed = self.store.sealed_many([state[key] for key in keys])
        return [RowWrite(key, handles[key].prefix_key, row, key in existed) for key, row in zip(keys, sealed)]


class Combiner:
    """Concurrent single writes of one process, applied a group at a time: while a group commits, the
    writes that arrive wait and form the next one, so one commit (and one log lock) serves many."""

    def __init__(self, applier: Applier, authorizer: Callable[[], Authorizer], *, max_group: int = 64,
                 concurrency: int = 1) -> None:
        self._applier = applier
        self._authorizer = authorizer
        self._max_group = max_group
        self._concurrency = concurrency
        self._queue: list[tuple[Operation, Caller, asyncio.Future]] = []
        self._running = 0
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, op: Operation, caller: Caller) -> Outcome:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append((op, caller, future))
        self._start()
        return await asyncio.shield(future)

    def _start(self) -> None:
        while self._queue and self._running < self._concurrency:
            self._running += 1
            task = asyncio.ensure_future(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        await asyncio.sleep(0)  # let the requests already received queue their writes: they join this group
        taken, self._queue = self._queue[: self._max_group], self._queue[self._max_group:]
        try:
            if taken:
                await self._apply(taken)
        finally:
            self._running -= 1
            self._start()

    async def _apply(self, taken: list[tuple[Operation, Caller, asyncio.Future]]) -> None:
        try:
            outcomes = await self._applier.apply([(op, caller) for op, caller, _ in taken], self._authorizer())
            for (_, _, future), outcome in zip(taken, outcomes):
                if not future.done():
                    future.set_result(outcome)
        except BaseException as exc:  # noqa: BLE001 - every waiter learns what went wrong
            for _, _, future in taken:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
