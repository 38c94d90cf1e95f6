"""Who may read the change feed and snapshots: an identity with a right on every prefix it asks for (an
HS_ADMIN on ``0.NA/<prefix>`` granting READ_VALUE and LIST_HANDLES, directly or through HS_VLIST
groups, as prefix admins have), a configured replication identity (``IDRES_SYNC_IDENTITIES``), or a
server admin. A mirror receives every value, the secret ones included, so reading a prefix's feed is
reading and listing all of it."""

from __future__ import annotations

from typing import Awaitable, Callable, Iterable

from registry.errors import AuthenticationNeeded, InsufficientPermissions, PrefixNotHomed
from registry.model import Handle, Record, ValueRef, prefix_record_handle
from registry.permissions import AdminPermission, identity_matches

from ..core.authority import CurrentAuthority
from ..core.callers import Caller
from ..core.rights import Rights, grants_of

NEEDED = AdminPermission.READ_VALUE | AdminPermission.LIST_HANDLES


class SyncAccess:
    def __init__(self, rights: Rights, records: Callable[[Handle], Awaitable["Record | None"]], authority: CurrentAuthority,
                 identities: Iterable[ValueRef]) -> None:
        self._rights = rights
        self._records = records
        self._authority = authority
        self._identities = tuple(identities)

    def check_prefixes(self, prefixes: Iterable[str]) -> None:
        """Every prefix asked for is homed or mirrored here."""
        snapshot = self._authority.snapshot
        for prefix in prefixes:
            if not snapshot.is_homed(prefix) and not snapshot.is_mirrored(prefix):
                raise PrefixNotHomed(f"prefix {prefix} is neither homed nor mirrored here: there is nothing of it to sync")

    async def authorise(self, caller: Caller | None, prefixes: tuple[str, ...]) -> None:
        """Raise AuthenticationNeeded (401), PrefixNotHomed (400) or InsufficientPermissions (403) unless ``caller``
        may read them all."""
        if caller is None:
            raise AuthenticationNeeded("the change feed and snapshots need credentials: an admin of the prefix "
                                       "(HTTP Basic, index:handle and secret) or a replication identity")
        self.check_prefixes(prefixes)
        if caller.server_admin or any(identity_matches(ref, caller.identity) for ref in self._identities):
            return
        if not prefixes:
            raise InsufficientPermissions(f"{caller.identity} may read the changes of prefixes it administers only: "
                                          "name them with ?prefix=")
        for prefix in prefixes:
            handle = prefix_record_handle(prefix)
            if not await self._rights.may(caller, NEEDED, grants_of(await self._records(handle))):
                raise InsufficientPermissions(f"{caller.identity} lacks {NEEDED.names()} on {handle.text}, which "
                                              f"syncing {prefix} needs", handle=handle.text)
