"""Write operations and what each does to a record: the decisions of a write, without I/O of its own.

An ``Operation`` names a handle and what to do to it. ``Planner.apply`` takes the record as it stands
(None when absent), authorises the caller, and returns the record's new state with the result to
report: the same rules for a single PUT and for an item of a batch. Timestamps come from ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from registry.errors import (
    HandleAlreadyExists,
    HandleNotFound,
    IdresError,
    ValueAlreadyExists,
    ValuesNotFound,
)
from registry.identifiers import IdentifierPolicy
from registry.model import Handle, HandleValue, Record
from registry.permissions import needed_for_change, needed_for_removal
from registry.validation import ValueLimits, check_values
from registry.values import SIGNATURE

from ..core.callers import Caller
from ..core.seckeys import SecretHasher
from .authorizer import Authorizer

CREATE, PUT, REPLACE, ADD, REMOVE, DELETE = "create", "put", "replace", "add", "remove", "delete"
KINDS = (CREATE, REPLACE, ADD, REMOVE, DELETE)  # the kinds of batch items; PUT is the REST API's
CREATIONS = (PUT, CREATE, REPLACE)  # the kinds that create a record where none is


@dataclass(frozen=True)
class WriteResult:
    handle: str
    created: bool  # nothing existing was overwritten: HTTP 201
    changed: bool = True  # False: the record already was so, nothing written


@dataclass(frozen=True)
class Operation:
    kind: str
    handle: Handle
    values: tuple[HandleValue, ...] = ()
    indexes: tuple[int, ...] = ()
    overwrite: bool = True  # PUT: replace an existing record; ADD: replace values at existing indexes


@dataclass
class Outcome:
    """The new state of the record (``record`` None: deleted or still absent) and what to report."""

    record: Record | None
    result: WriteResult | None = None
    error: IdresError | None = None
    changed: bool = False
    caller: Caller | None = field(default=None, repr=False)


@dataclass(frozen=True)
class InputChecks:
    """What the values a client sends must be (by type, ``registry.validation``) and what a new handle's
    name must be (the identifier policy, ``registry.identifiers``)."""

    policy: IdentifierPolicy
    limits: ValueLimits

    def values(self, handle: Handle, values: Sequence[HandleValue]) -> None:
        check_values(values, self.limits)
        self.policy.check_values(handle, values)


class Planner:
    def __init__(self, authorizer: Authorizer, hasher: SecretHasher, checks: InputChecks, *, signs: bool, now: int) -> None:
        self._auth = authorizer
        self._hasher = hasher
        self._checks = checks
        self._signs = signs
        self.now = now

    def _client_values(self, values: Iterable[HandleValue]) -> list[HandleValue]:
        """The values a change is judged on: a signing node's own HS_SIGNATURE is not the client's to change."""
        if not self._signs:
            return list(values)
        return [v for v in values if v.type_key != SIGNATURE]

    async def apply(self, op: Operation, caller: Caller, current: Record | None) -> Outcome:
        """The outcome of ``op`` on ``current``; an IdresError becomes the outcome's error."""
        try:
            if op.values:
                self._checks.values(op.handle, op.values)
            if op.kind in CREATIONS:
                return await self._put(op, caller, current)
            if op.kind == ADD:
                return await self._add(op, caller, current)
            if op.kind == REMOVE:
                return await self._remove(op, caller, current)
            return await self._delete(op, caller, current)
        except IdresError as error:
            if error.handle is None:
                error.handle = op.handle.text
            return Outcome(current, error=error)

    def _unchanged(self, op: Operation, current: Record | None, created: bool = False) -> Outcome:
        return Outcome(current, WriteResult(op.handle.text, created=created, changed=False))

    async def _put(self, op: Operation, caller: Caller, current: Record | None) -> Outcome:
        handle, now = op.handle, self.now
        values = self._hasher.seal(current, op.values)
        if current is None:
            await self._auth.require_creation(caller, handle)
            self._checks.policy.check_new(handle)  # new handles only: existing records stay replaceable
            record = Record(handle, tuple(v.stamped(now) for v in values))
            return Outcome(record, WriteResult(handle.text, created=True), changed=True)
        old, new = self._client_values(current.values), self._client_values(values)
        same = _same_content(old, new)
        if op.kind == PUT and not op.overwrite or op.kind == CREATE and not same:
            raise HandleAlreadyExists(handle=handle.text)
        await self._auth.require(caller, needed_for_change(old, new), handle, current)
        if same:
            return self._unchanged(op, current)  # nothing to change: nothing written, nothing re-signed
        record = current.with_values(_keep_unchanged_timestamps(current, values, now))
        return Outcome(record, WriteResult(handle.text, created=False), changed=True)

    async def _add(self, op: Operation, caller: Caller, current: Record | None) -> Outcome:
        handle = op.handle
        if current is None:
            raise HandleNotFound(handle=handle.text)
        clashing = [v.index for v in op.values if current.value_at(v.index) is not None]
        if clashing and not op.overwrite:
            raise ValueAlreadyExists(f"Index conflict for {clashing[0]}", handle=handle.text)
        merged = {v.index: v for v in current.values}
        merged.update({v.index: v.stamped(self.now) for v in self._hasher.seal(current, op.values)})
        old, new = self._client_values(current.values), self._client_values(merged.values())
        await self._auth.require(caller, needed_for_change(old, new), handle, current)
        if _same_content(old, new):
            return self._unchanged(op, current)
        return Outcome(current.with_values(merged.values()), WriteResult(handle.text, created=not clashing), changed=True)

    async def _remove(self, op: Operation, caller: Caller, current: Record | None) -> Outcome:
        handle, indexes = op.handle, set(op.indexes)
        if current is None:
            raise HandleNotFound(handle=handle.text)
        missing = sorted(i for i in indexes if current.value_at(i) is None)
        if missing:
            raise ValuesNotFound(f"no value at index {', '.join(map(str, missing))}", handle=handle.text)
        removed = [v for v in current.values if v.index in indexes]
        await self._auth.require(caller, needed_for_removal(removed), handle, current)
        record = current.with_values(v for v in current.values if v.index not in indexes)
        return Outcome(record, WriteResult(handle.text, created=False), changed=True)

    async def _delete(self, op: Operation, caller: Caller, current: Record | None) -> Outcome:
        if current is None:
            raise HandleNotFound(handle=op.handle.text)
        await self._auth.require_deletion(caller, op.handle, current)
        return Outcome(None, WriteResult(op.handle.text, created=False), changed=True)


def _same_content(old: Sequence[HandleValue], new: Sequence[HandleValue]) -> bool:
    """Equal apart from timestamps."""
    def plain(values: Sequence[HandleValue]) -> list[HandleValue]:
        return [v.stamped(0) for v in sorted(values, key=lambda v: v.index)]

    return plain(old) == plain(new)


def _keep_unchanged_timestamps(old: Record, values: Sequence[HandleValue], now: int) -> list[HandleValue]:
    """New timestamps, except for values identical to the old ones apart from their timestamp."""
    out = []
    for value in values:
        before = old.value_at(value.index)
        out.append(before if before is not None and before.same_content(value) else value.stamped(now))
    return out
