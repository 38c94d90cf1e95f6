"""Who may change what: the HS_ADMIN values of a record and of the prefix record that governs it.

One ``Authorizer`` serves one unit of work (a single write, a group of writes, a whole batch): the
prefix records it reads and the decisions it takes on them are kept for that unit, so a batch of ten
thousand handles under one prefix looks the prefix's rights up once.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from registry.errors import InsufficientPermissions, PrefixNotHomed
from registry.model import Handle, Record, ancestors, prefix_record_handle
from registry.permissions import AdminPermission as P

from ..core.authority import AuthoritySnapshot, Delegated, Homed, Mirrored
from ..core.callers import Caller
from ..core.rights import Rights, grants_of

PrefixRecord = Callable[[Handle], Awaitable[Record | None]]
"""The record of a prefix (``0.NA/…``), or None."""


def refuse_mirrored(snapshot: AuthoritySnapshot, handle: Handle) -> None:
    """A mirrored prefix is written only by its follower: writes go to the origin."""
    answer = snapshot.answer_for(handle)
    if isinstance(answer, Mirrored):
        raise PrefixNotHomed(f"That prefix doesn't live here: {answer.describe()}; write there", handle=handle.text)


def require_homed(snapshot: AuthoritySnapshot, handle: Handle) -> None:
    """Writes go to the node that signs the handle: PrefixNotHomed (naming the node serving a delegated
    prefix, or the origin of a mirrored one) when that is not this one."""
    refuse_mirrored(snapshot, handle)
    answer = snapshot.answer_for(handle)
    if isinstance(answer, Delegated):
        raise PrefixNotHomed(f"That prefix doesn't live here: {answer.describe()} serves it; write there", handle=handle.text)
    if not isinstance(answer, Homed):
        raise PrefixNotHomed(handle=handle.text)


class Authorizer:
    def __init__(self, lookup: PrefixRecord, rights: Rights, *, prefix_admins_manage_handles: bool = True) -> None:
        self._lookup = lookup
        self._rights = rights
        self._prefix_admins = prefix_admins_manage_handles
        self._prefix_records: dict[str, Record | None] = {}
        self._decisions: dict[tuple, bool] = {}

    async def _prefix_record(self, handle: Handle) -> Record | None:
        key = handle.key
        if key not in self._prefix_records:
            self._prefix_records[key] = await self._lookup(handle)
        return self._prefix_records[key]

    async def _governing(self, handle: Handle, for_creation: bool) -> Handle | None:
        """The prefix record whose HS_ADMIN values govern ``handle`` (None: no prefix admin applies)."""
        if handle.is_prefix_record:
            for parent in ancestors(handle.suffix)[1:]:
                candidate = prefix_record_handle(parent)
                if await self._prefix_record(candidate) is not None:
                    return candidate
            return None
        if not for_creation and not self._prefix_admins:
            return None
        return prefix_record_handle(handle.prefix)

    async def _prefix_may(self, caller: Caller, needed: P, handle: Handle, for_creation: bool) -> bool:
        governing = await self._governing(handle, for_creation)
        if governing is None:
            return await self._rights.may(caller, needed, [])
        decision = (caller.identity.key, governing.key, int(needed))
        if decision not in self._decisions:
            grants = grants_of(await self._prefix_record(governing))
            self._decisions[decision] = await self._rights.may(caller, needed, grants)
        return self._decisions[decision]

    async def may(self, caller: Caller, needed: P, handle: Handle, record: Record | None) -> bool:
        """Granted by the record's HS_ADMIN values or, where configured, by the prefix's admins."""
        if await self._rights.may(caller, needed, grants_of(record)):
            return True
        return await self._prefix_may(caller, needed, handle, for_creation=False)

    async def require(self, caller: Caller, needed: P, handle: Handle, record: Record | None) -> None:
        if needed and not await self.may(caller, needed, handle, record):
            raise InsufficientPermissions(f"{caller.identity} lacks {needed.names()} on {handle.text}", handle=handle.text)

    async def require_creation(self, caller: Caller, handle: Handle) -> None:
        needed = P.ADD_DERIVED_PREFIX if handle.is_prefix_record else P.ADD_HANDLE
        if not await self._prefix_may(caller, needed, handle, for_creation=True):
            raise InsufficientPermissions(f"{caller.identity} may not create handles under {handle.prefix}", handle=handle.text)

    async def require_deletion(self, caller: Caller, handle: Handle, record: Record) -> None:
        if await self._rights.may(caller, P.DELETE_HANDLE, grants_of(record)):
            return
        needed = P.DELETE_DERIVED_PREFIX if handle.is_prefix_record else P.DELETE_HANDLE
        if not await self._prefix_may(caller, needed, handle, for_creation=False):
            raise InsufficientPermissions(f"{caller.identity} may not delete {handle.text}", handle=handle.text)
