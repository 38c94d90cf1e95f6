"""Authorised writes: create, replace, add and remove values, delete, list, home and unhome.

Each operation checks its input and goes to the write combiner (``applier.Combiner``), which applies
it with the concurrent writes of this process in one transaction: the rows locked, the caller
authorised against the HS_ADMIN values that govern the handle (``authorizer``), the new version
decided (``operations``), signed and logged. Writers of the same handle queue on its row lock.
Timestamps are stamped from the injected clock.
"""

from __future__ import annotations

import time
import uuid
from typing import Awaitable, Callable, Iterable, Sequence

from registry.errors import (
    AuthenticationNeeded,
    ConcurrentUpdate,
    HandleAlreadyExists,
    InsufficientPermissions,
    InvalidValue,
    OperationNotSupported,
    PrefixNotHomed,
    ProtocolError,
)
from registry.identifiers import IdentifierPolicy
from registry.model import Handle, HandleValue, Record, check_indexes, prefix_record_handle
from registry.permissions import AdminPermission as P
from registry.records import StoredRecord
from registry.pg.store import Store
from registry.validation import ValueLimits
from registry.values import SiteInfo

from ..core.authority import CurrentAuthority
from ..core.callers import Caller
from ..core.retry import retry_on_conflict
from ..core.rights import Rights, grants_of
from ..core.seckeys import SecretHasher
from ..resolution.engine import Engine
from ..resolution.keeper import AuthorityKeeper
from .applier import Applier, Combiner
from .authorizer import Authorizer, refuse_mirrored, require_homed
from .delegations import check_delegable, remove_delegation, write_delegation
from .operations import ADD, DELETE, PUT, REMOVE, Operation, WriteResult

__all__ = ["Registrar", "WriteResult"]


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
        clock: Callable[[], float] = time.time,
        hasher: SecretHasher | None = None,
        identifier_policy: IdentifierPolicy = IdentifierPolicy(),
    ) -> None:
        self._max_length = max_handle_length
        self._store = store
        self._engine = engine
        self._rights = rights
        self._authority = authority
        self._keeper = keeper
        self._policy = identifier_policy
        self._prefix_admins = prefix_admins_manage_handles
        self._allow_list = allow_list_handles
        self._clock = clock
        self.applier = Applier(store, hasher or SecretHasher(), clock=clock, written=engine.invalidate,
                               created=self._count_creation, policy=identifier_policy,
                               value_limits=ValueLimits(max_handle_length=max_handle_length))
        self._combiner = Combiner(self.applier, self.authorizer)

    # --- helpers ---------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self._clock())

    def authorizer(self) -> Authorizer:
        """A fresh authorizer: what it learns of prefix rights is kept for one unit of work."""
        return Authorizer(self._prefix_record, self._rights, prefix_admins_manage_handles=self._prefix_admins)

    async def _prefix_record(self, handle: Handle) -> Record | None:
        """A prefix record, through the cache (as identities and admin groups are) when homed here."""
        if self._authority.snapshot.covers(handle):
            return await self._engine.record_of(handle)
        stored = await self._store.get(handle.key)
        return stored.record if stored is not None else None

    @staticmethod
    def _require_caller(caller: Caller | None, handle: str | None) -> Caller:
        if caller is None:
            raise AuthenticationNeeded("this operation needs credentials (HTTP Basic, index:handle and secret)", handle=handle)
        return caller

    def _require_homed(self, handle: Handle) -> None:
        require_homed(self._authority.snapshot, handle)

    def _count_creation(self, handle: Handle) -> None:
        self._engine.statistics.tally(handle).registrations += 1

    async def _fresh(self, handle: Handle) -> StoredRecord | None:
        return await self._store.get(handle.key)

    async def may(self, caller: Caller, needed: P, handle: Handle, record: Record | None) -> bool:
        """Granted by the record's HS_ADMIN values or, where configured, by the prefix's admins."""
        return await self.authorizer().may(caller, needed, handle, record)

    async def _submit(self, op: Operation, caller: Caller | None, *, homed: bool = True) -> WriteResult:
        """Apply ``op`` for an authenticated caller with the other writes of this process; its error raised.
        ``homed``: the handle must be under a homed prefix (its new version is signed here)."""
        if homed:
            self._require_homed(op.handle)
        else:
            refuse_mirrored(self._authority.snapshot, op.handle)
        known = self._require_caller(caller, op.handle.text)
        outcome = await self._combiner.submit(op, known)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.result is not None
        return outcome.result

    # --- create / replace ------------------------------------------------------------------------

    async def put(self, handle: Handle, values: Sequence[HandleValue], caller: Caller | None, *, overwrite: bool = True) -> WriteResult:
        """Create the handle with these values, or replace all its values (``overwrite``)."""
        check_indexes(values)
        return await self._submit(Operation(PUT, handle, tuple(values), overwrite=overwrite), caller)

    async def mint(self, base: Handle, values: Sequence[HandleValue], caller: Caller | None) -> WriteResult:
        """Create ``base`` + 32 random hex characters (``PUT .../prefix/?mintNewSuffix=true``)."""
        check_indexes(values)
        if base.is_prefix_record:
            raise ProtocolError("mint under a prefix with PUT /api/handles/<prefix>/?mintNewSuffix=true", handle=base.text)
        self._require_homed(base)
        caller = self._require_caller(caller, base.text)

        async def attempt() -> WriteResult:
            handle = Handle.parse(base.text + uuid.uuid4().hex, max_length=self._max_length)
            return await self._submit(Operation(PUT, handle, tuple(values), overwrite=False), caller)

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
        check_indexes(values)
        return await self._submit(Operation(ADD, handle, tuple(values), overwrite=overwrite), caller)

    async def remove_values(self, handle: Handle, indexes: Sequence[int], caller: Caller | None) -> WriteResult:
        # homed: the changed record must be signed anew, which only its node can do
        return await self._submit(Operation(REMOVE, handle, indexes=tuple(indexes)), caller)

    # --- delete, list ----------------------------------------------------------------------------

    async def delete(self, handle: Handle, caller: Caller | None) -> WriteResult:
        return await self._submit(Operation(DELETE, handle), caller, homed=False)

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
        refuse_mirrored(self._authority.snapshot, prefix_record_handle(prefix))
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

    async def authorise_prefix_reader(self, caller: Caller | None, prefix: str) -> None:
        """Who may read a prefix's statistics: server admins, and the prefix's admins with LIST_HANDLES."""
        prefix_handle = prefix_record_handle(prefix)
        caller = self._require_caller(caller, prefix_handle.text)
        stored = await self._fresh(prefix_handle)
        if not await self._rights.may(caller, P.LIST_HANDLES, grants_of(stored.record if stored else None)):
            raise InsufficientPermissions(f"{caller.identity} may not read the statistics of {prefix}", handle=prefix_handle.text)

    async def homed(self, caller: Caller | None) -> list[str]:
        self._require_server_admin(caller, None)
        return await self._store.homed_prefixes()

    async def delegate(self, prefix: str, caller: Caller | None, sites: Callable[[], Awaitable[list[SiteInfo]]]) -> Record:
        """Delegate a prefix derived from one homed here to the node(s) ``sites()`` gives (server admins
        only); it is called once the caller and the prefix are known to be fit, as it may ask other nodes."""
        self._require_server_admin(caller, prefix)
        check_delegable(self._authority.snapshot, prefix)
        record = await write_delegation(self._store, self._authority.snapshot, prefix, await sites(), self.now())
        await self._keeper.refresh([record.handle.key])
        return record

    async def undelegate(self, prefix: str, caller: Caller | None) -> None:
        self._require_server_admin(caller, prefix)
        await remove_delegation(self._store, self._authority.snapshot, prefix)
        await self._keeper.refresh([prefix_record_handle(prefix).key])

    async def reload_authority(self) -> None:
        """A new snapshot of who answers for what, from the store; the cache starts afresh."""
        await self._keeper.reload()

