"""Authorised writes: create, replace, add and remove values, delete, list, home and unhome.

Each operation checks its input, authorises the caller against the HS_ADMIN values that govern the
handle, then writes the whole new record with a version check; a concurrent change makes it start
over. Timestamps are stamped here, from the injected clock.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, Sequence

from registry.errors import (
    AuthenticationNeeded,
    ConcurrentUpdate,
    HandleAlreadyExists,
    HandleNotFound,
    InsufficientPermissions,
    InvalidValue,
    OperationNotSupported,
    PrefixNotHomed,
    ProtocolError,
    ValueAlreadyExists,
    ValuesNotFound,
)
from registry.identifiers import IdentifierPolicy
from registry.model import Handle, HandleValue, Record, ancestors, check_indexes, prefix_record_handle
from registry.values import SIGNATURE, SiteInfo
from registry.permissions import AdminPermission as P
from registry.permissions import needed_for_change, needed_for_removal
from registry.records import StoredRecord
from registry.pg.store import Store
from registry.validation import ValueLimits, check_values

from ..core.authority import CurrentAuthority, Delegated, Homed, Mirrored
from ..core.callers import Caller
from ..core.retry import retry_on_conflict
from ..core.rights import Rights, grants_of
from ..resolution.engine import Engine
from ..resolution.keeper import AuthorityKeeper
from .delegations import remove_delegation, write_delegation


@dataclass(frozen=True)
class WriteResult:
    handle: str
    created: bool  # nothing existing was overwritten: HTTP 201


class Registrar:
    def __init__(
        self,
        store: Store,
        engine: Engine,
        rights: Rights,
        authority: CurrentAuthority,
        keeper: AuthorityKeeper,
        *,
        prefix_admins_manage_handles: bool = True,
        allow_list_handles: bool = True,
        max_handle_length: int = 255,
        identifier_policy: IdentifierPolicy = IdentifierPolicy(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_length = max_handle_length
        self._limits = ValueLimits(max_handle_length=max_handle_length)
        self._policy = identifier_policy
        self._store = store
        self._engine = engine
        self._rights = rights
        self._authority = authority
        self._keeper = keeper
        self._prefix_admins = prefix_admins_manage_handles
        self._allow_list = allow_list_handles
        self._clock = clock

    # --- helpers ---------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self._clock())

    @staticmethod
    def _require_caller(caller: Caller | None, handle: str | None) -> Caller:
        if caller is None:
            raise AuthenticationNeeded("this operation needs credentials (HTTP Basic, index:handle and secret)", handle=handle)
        return caller

    def _require_homed(self, handle: Handle) -> None:
        answer = self._authority.snapshot.answer_for(handle)
        self._refuse_mirrored(handle, answer)
        if isinstance(answer, Delegated):
            raise PrefixNotHomed(f"That prefix doesn't live here: {answer.describe()} serves it; write there", handle=handle.text)
        if not isinstance(answer, Homed):
            raise PrefixNotHomed(handle=handle.text)

    @staticmethod
    def _refuse_mirrored(handle: Handle, answer: object) -> None:
        """A mirrored prefix is written only by its follower: writes go to the origin."""
        if isinstance(answer, Mirrored):
            raise PrefixNotHomed(f"That prefix doesn't live here: {answer.describe()}; write there", handle=handle.text)

    async def _fresh(self, handle: Handle) -> StoredRecord | None:
        return await self._store.get(handle.key)

    async def _prefix_grants(self, handle: Handle, for_creation: bool) -> list:
        """HS_ADMIN values of the prefix record that governs ``handle``."""
        if handle.is_prefix_record:
            parents = ancestors(handle.suffix)[1:]
            records = [await self._fresh(prefix_record_handle(p)) for p in parents]
            found = next((r for r in records if r is not None), None)
            return grants_of(found.record if found else None)
        if not for_creation and not self._prefix_admins:
            return []
        stored = await self._fresh(prefix_record_handle(handle.prefix))
        return grants_of(stored.record if stored else None)

    async def may(self, caller: Caller, needed: P, handle: Handle, record: Record | None) -> bool:
        """Granted by the record's HS_ADMIN values or, where configured, by the prefix's admins."""
        if await self._rights.may(caller, needed, grants_of(record)):
            return True
        return await self._rights.may(caller, needed, await self._prefix_grants(handle, for_creation=False))

    async def _authorise(self, caller: Caller, needed: P, handle: Handle, record: Record | None) -> None:
        if needed and not await self.may(caller, needed, handle, record):
            raise InsufficientPermissions(f"{caller.identity} lacks {needed.names()} on {handle.text}", handle=handle.text)

    def _check_input(self, handle: Handle, values: Sequence[HandleValue]) -> None:
        """The values a client sends, by type and by the identifier policy, before anything is read or written."""
        check_indexes(values)
        check_values(values, self._limits)
        self._policy.check_values(handle, values)

    def _client_values(self, values: Iterable[HandleValue]) -> list[HandleValue]:
        """The values a change is judged on: a signing node's own HS_SIGNATURE is not the client's to change."""
        if self._store.sealer is None:
            return list(values)
        return [v for v in values if v.type_key != SIGNATURE]

    async def _write(self, handle: Handle, caller: Caller | None, once: Callable[[Caller], Awaitable[WriteResult]],
                     *, homed: bool = True) -> WriteResult:
        """``once(caller)`` for an authenticated caller, retried on conflict; the handle is evicted from the
        cache after. ``homed``: the handle must be under a homed prefix (its new version is signed here)."""
        if homed:
            self._require_homed(handle)
        else:
            self._refuse_mirrored(handle, self._authority.snapshot.answer_for(handle))
        known = self._require_caller(caller, handle.text)
        result = await retry_on_conflict(lambda: once(known))
        self._written(handle)
        return result

    def _written(self, handle: Handle) -> None:
        self._engine.invalidate(handle.key)

    # --- create / replace ------------------------------------------------------------------------

    async def put(self, handle: Handle, values: Sequence[HandleValue], caller: Caller | None, *, overwrite: bool = True) -> WriteResult:
        """Create the handle with these values, or replace all its values (``overwrite``)."""
        self._check_input(handle, values)
        return await self._write(handle, caller, lambda known: self._put_once(handle, values, known, overwrite))

    async def _put_once(self, handle: Handle, values: Sequence[HandleValue], caller: Caller, overwrite: bool) -> WriteResult:
        now = self.now()
        existing = await self._fresh(handle)
        if existing is None:
            await self._authorise_creation(caller, handle)
            self._policy.check_new(handle)  # new handles only: existing records stay replaceable
            try:
                await self._store.create(Record(handle, tuple(v.stamped(now) for v in values)))
            except HandleAlreadyExists:
                if not overwrite:
                    raise
                raise ConcurrentUpdate(handle=handle.text) from None
            return WriteResult(handle.text, created=True)
        if not overwrite:
            raise HandleAlreadyExists(handle=handle.text)
        old = existing.record
        needed = needed_for_change(self._client_values(old.values), self._client_values(values))
        await self._authorise(caller, needed, handle, old)
        if _same_content(self._client_values(old.values), self._client_values(values)):
            return WriteResult(handle.text, created=False)  # nothing to change: nothing written, nothing re-signed
        new = old.with_values(_keep_unchanged_timestamps(old, values, now))
        await self._store.replace(new, existing.version)
        return WriteResult(handle.text, created=False)

    async def _authorise_creation(self, caller: Caller, handle: Handle) -> None:
        needed = P.ADD_DERIVED_PREFIX if handle.is_prefix_record else P.ADD_HANDLE
        if not await self._rights.may(caller, needed, await self._prefix_grants(handle, for_creation=True)):
            raise InsufficientPermissions(f"{caller.identity} may not create handles under {handle.prefix}", handle=handle.text)

    async def mint(self, base: Handle, values: Sequence[HandleValue], caller: Caller | None) -> WriteResult:
        """Create ``base`` + 32 random hex characters (``PUT .../prefix/?mintNewSuffix=true``)."""
        self._check_input(base, values)
        if base.is_prefix_record:
            raise ProtocolError("mint under a prefix with PUT /api/handles/<prefix>/?mintNewSuffix=true", handle=base.text)
        self._require_homed(base)
        caller = self._require_caller(caller, base.text)

        async def attempt() -> WriteResult:
            handle = Handle.parse(base.text + uuid.uuid4().hex, max_length=self._max_length)
            result = await self._put_once(handle, values, caller, overwrite=False)
            self._written(handle)
            return result

        try:
            return await retry_on_conflict(attempt, also=(HandleAlreadyExists,))
        except (ConcurrentUpdate, HandleAlreadyExists):
            raise ConcurrentUpdate("could not mint an unused suffix; try again", handle=base.text) from None

    # --- add / remove values ---------------------------------------------------------------------

    async def add_values(
        self,
        handle: Handle,
        values: Sequence[HandleValue],
        caller: Caller | None,
        *,
        indexes: Iterable[int] | None,
        overwrite: bool = True,
    ) -> WriteResult:
        """Add or replace individual values; ``indexes`` (from ``?index=``) must match the body's, None for ``various``."""
        if indexes is not None and set(indexes) != {v.index for v in values}:
            raise ProtocolError("Mismatched indexes in PUT request", handle=handle.text)
        if not values:
            raise InvalidValue("no values to add", handle=handle.text)
        self._check_input(handle, values)
        return await self._write(handle, caller, lambda known: self._add_once(handle, values, known, overwrite))

    async def _add_once(self, handle: Handle, values: Sequence[HandleValue], caller: Caller, overwrite: bool) -> WriteResult:
        existing = await self._fresh(handle)
        if existing is None:
            raise HandleNotFound(handle=handle.text)
        old = existing.record
        clashing = [v.index for v in values if old.value_at(v.index) is not None]
        if clashing and not overwrite:
            raise ValueAlreadyExists(f"Index conflict for {clashing[0]}", handle=handle.text)
        merged = {v.index: v for v in old.values}
        now = self.now()
        merged.update({v.index: v.stamped(now) for v in values})
        needed = needed_for_change(self._client_values(old.values), self._client_values(merged.values()))
        await self._authorise(caller, needed, handle, old)
        if _same_content(self._client_values(old.values), self._client_values(merged.values())):
            return WriteResult(handle.text, created=False)
        await self._store.replace(old.with_values(merged.values()), existing.version)
        return WriteResult(handle.text, created=not clashing)

    async def remove_values(self, handle: Handle, indexes: Sequence[int], caller: Caller | None) -> WriteResult:
        # homed: the changed record must be signed anew, which only its node can do
        return await self._write(handle, caller, lambda known: self._remove_once(handle, set(indexes), known))

    async def _remove_once(self, handle: Handle, indexes: set[int], caller: Caller) -> WriteResult:
        existing = await self._fresh(handle)
        if existing is None:
            raise HandleNotFound(handle=handle.text)
        old = existing.record
        missing = sorted(i for i in indexes if old.value_at(i) is None)
        if missing:
            raise ValuesNotFound(f"no value at index {', '.join(map(str, missing))}", handle=handle.text)
        removed = [v for v in old.values if v.index in indexes]
        await self._authorise(caller, needed_for_removal(removed), handle, old)
        await self._store.replace(old.with_values(v for v in old.values if v.index not in indexes), existing.version)
        return WriteResult(handle.text, created=False)

    # --- delete, list ----------------------------------------------------------------------------

    async def delete(self, handle: Handle, caller: Caller | None) -> WriteResult:
        return await self._write(handle, caller, lambda known: self._delete_once(handle, known), homed=False)

    async def _delete_once(self, handle: Handle, caller: Caller) -> WriteResult:
        existing = await self._fresh(handle)
        if existing is None:
            raise HandleNotFound(handle=handle.text)
        if not await self._rights.may(caller, P.DELETE_HANDLE, grants_of(existing.record)):
            parent_needed = P.DELETE_DERIVED_PREFIX if handle.is_prefix_record else P.DELETE_HANDLE
            if not await self._rights.may(caller, parent_needed, await self._prefix_grants(handle, for_creation=False)):
                raise InsufficientPermissions(f"{caller.identity} may not delete {handle.text}", handle=handle.text)
        await self._store.delete(handle, existing.version)
        return WriteResult(handle.text, created=False)

    async def list_handles(self, prefix: str, caller: Caller | None, *, page: int | None, page_size: int | None) -> tuple[int, list[str]]:
        if not self._allow_list:
            raise OperationNotSupported("listing handles is switched off on this node")
        prefix_handle = prefix_record_handle(prefix)
        caller = self._require_caller(caller, prefix_handle.text)
        snapshot = self._authority.snapshot
        if not snapshot.is_homed(prefix) and not snapshot.is_mirrored(prefix):
            raise PrefixNotHomed(handle=prefix_handle.text)
        stored = await self._fresh(prefix_handle)
        if not await self._rights.may(caller, P.LIST_HANDLES, grants_of(stored.record if stored else None)):
            raise InsufficientPermissions(f"{caller.identity} may not list handles under {prefix}", handle=prefix_handle.text)
        if page is None or page_size is None or page < 0 or page_size < 0:
            return await self._store.list_handles(prefix)
        return await self._store.list_handles(prefix, offset=page * page_size, limit=page_size)

    # --- prefixes --------------------------------------------------------------------------------

    def _require_server_admin(self, caller: Caller | None, handle: str | None) -> Caller:
        caller = self._require_caller(caller, handle)
        if not caller.server_admin:
            raise InsufficientPermissions(f"{caller.identity} is not a server admin of this node", handle=handle)
        return caller

    async def home(self, prefix: str, caller: Caller | None, prefix_record: Record | None) -> bool:
        self._require_server_admin(caller, prefix)
        self._refuse_mirrored(prefix_record_handle(prefix), self._authority.snapshot.answer_for(prefix_record_handle(prefix)))
        self._policy.check_new(prefix_record_handle(prefix))
        # homed a moment early, so that the new prefix record is signed as it is written
        self._authority.replace(self._authority.snapshot.with_homed(prefix))
        try:
            return await self._store.home(prefix, prefix_record)
        finally:
            await self.reload_authority()

    async def unhome(self, prefix: str, caller: Caller | None) -> None:
        self._require_server_admin(caller, prefix)
        removed = await self._store.unhome(prefix)
        await self.reload_authority()
        if not removed:
            raise PrefixNotHomed(f"prefix {prefix} is not homed here", handle=prefix)

    async def homed(self, caller: Caller | None) -> list[str]:
        self._require_server_admin(caller, None)
        return await self._store.homed_prefixes()

    async def delegate(self, prefix: str, caller: Caller | None, sites: list[SiteInfo]) -> Record:
        """Delegate a prefix derived from one homed here to the node(s) of ``sites`` (server admins only)."""
        self._require_server_admin(caller, prefix)
        record = await write_delegation(self._store, self._authority.snapshot, prefix, sites, self.now())
        await self._keeper.refresh([record.handle.key])
        return record

    async def undelegate(self, prefix: str, caller: Caller | None) -> None:
        self._require_server_admin(caller, prefix)
        await remove_delegation(self._store, self._authority.snapshot, prefix)
        await self._keeper.refresh([prefix_record_handle(prefix).key])

    async def reload_authority(self) -> None:
        """A new snapshot of who answers for what, from the store; the cache starts afresh."""
        await self._keeper.reload()


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
