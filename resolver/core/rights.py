"""Whether a caller is who it claims (HS_SECKEY) and what it may do (HS_ADMIN, HS_VLIST).

The decisions themselves are pure (registry.permissions); this module does the lookups they need:
the identity's record, the records holding the admin values, and admin groups, through a record
lookup the serving process wires to its resolution cache. A revoked key or admin therefore stops
working within the cache's staleness bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import OrderedDict
from typing import TYPE_CHECKING, Awaitable, Callable, Iterable, NoReturn

from registry.errors import AuthenticationFailed, IdresError, InvalidHandle
from registry.model import Handle, HandleValue, Record, ValueRef
from registry.permissions import AdminGrant, AdminPermission, identity_matches
from registry.values import ADMIN, SECKEY, VLIST, admin_from_bytes, vlist_from_bytes

from . import seckeys
from .callers import Caller, Credentials

if TYPE_CHECKING:
    from .limits import RateLimits

RecordLookup = Callable[[Handle], Awaitable[Record | None]]
"""The record of a handle this node answers for; None when it has none or does not answer for it."""
ClearSecretFound = Callable[[ValueRef, HandleValue, bytes], Awaitable[None]]
"""Called with an identity whose HS_SECKEY was found in clear and the secret that proved it."""
VERIFIED_ENTRIES = 10_000

MAX_GROUP_DEPTH = 5
MAX_GROUP_LOOKUPS = 64  # records read to expand admin groups for one decision


def grants_of(record: Record | None) -> list[AdminGrant]:
    if record is None:
        return []
    grants = []
    for value in record.of_type(ADMIN):
        try:
            grants.append(admin_from_bytes(value.data))
        except IdresError:
            continue  # an unreadable HS_ADMIN grants nothing
    return grants


class Rights:
    def __init__(self, lookup: RecordLookup, server_admins: Iterable[ValueRef],
                 clear_found: ClearSecretFound | None = None) -> None:
        self._lookup = lookup
        self._server_admins = tuple(server_admins)
        self._clear_found = clear_found
        self.limits: "RateLimits | None" = None
        self._verified: OrderedDict[tuple, bytes] = OrderedDict()
        self._verifying: dict[tuple, asyncio.Lock] = {}

    async def record(self, handle_text: str) -> Record | None:
        """The record of an identity's handle, through the lookup this node wired (None if unknown)."""
        return await self._record(handle_text)

    async def _record(self, handle_text: str) -> Record | None:
        try:
            handle = Handle.parse(handle_text)
        except InvalidHandle:
            return None
        return await self._lookup(handle)

    async def authenticate(self, credentials: Credentials) -> Caller:
        """The caller, if the secret matches the identity's HS_SECKEY; AuthenticationFailed otherwise.

        A hashed key costs a key derivation to check, so a secret that checked out is remembered (as a
        digest, with the stored value it matched) and the next request with it costs a dictionary probe.
        A key changed in the record no longer matches what was remembered."""
        identity = credentials.identity
        record = await self._record(identity.handle)
        keys = [] if record is None else [
            v for v in record.of_type(SECKEY) if identity.index == 0 or v.index == identity.index
        ]
        digest = hashlib.sha256(credentials.secret).digest()
        matched = self._known(identity, keys, digest)
        if matched is None:
            # one key derivation per secret at a time (in a thread): the requests that came with it wait for it
            lock = self._verifying.setdefault((identity.key, digest), asyncio.Lock())
            try:
                async with lock:
                    matched = self._known(identity, keys, digest) or await self._verify(credentials, keys, digest)
            finally:
                if not lock.locked():
                    self._verifying.pop((identity.key, digest), None)
        return self.caller(identity)

    async def failed(self, identity: ValueRef | None, address: str | None) -> NoReturn:
        """Count a failed login (TooManyRequests once over a limit), then AuthenticationFailed."""
        if self.limits is not None:
            await self.limits.failed_login(identity, address)
        raise AuthenticationFailed(f"Identity not verified: {identity}" if identity is not None else "Identity not verified")

    def _known(self, identity: ValueRef, keys: list[HandleValue], digest: bytes) -> HandleValue | None:
        return next((v for v in keys if hmac.compare_digest(self._verified.get((identity.key, v.data), b""), digest)), None)

    async def _verify(self, credentials: Credentials, keys: list[HandleValue], digest: bytes) -> HandleValue:
        identity = credentials.identity
        if self.limits is not None:
            await self.limits.check_login(identity, credentials.address)
        matched = None
        for value in keys:
            if await asyncio.to_thread(seckeys.matches, value.data, credentials.secret):
                matched = value
                break
        if matched is None:
            await self.failed(identity, credentials.address)
        self._remember(identity, matched, digest)
        if not seckeys.is_hashed(matched.data) and self._clear_found is not None:
            await self._clear_found(ValueRef(matched.index, identity.handle), matched, credentials.secret)
        return matched

    def caller(self, identity: ValueRef) -> Caller:
        """The caller an identity proved to be (a server admin when configuration names it)."""
        return Caller(identity, any(identity_matches(ref, identity) for ref in self._server_admins))

    def _remember(self, identity: ValueRef, value: HandleValue, digest: bytes) -> None:
        self._verified[(identity.key, value.data)] = digest
        while len(self._verified) > VERIFIED_ENTRIES:
            self._verified.popitem(last=False)

    async def may(self, caller: Caller, needed: AdminPermission, grants: Iterable[AdminGrant]) -> bool:
        """True if a grant with every bit of ``needed`` names the caller, directly or through HS_VLIST groups."""
        if caller.server_admin:
            return True
        refs = [g.ref for g in grants if (g.permissions & needed) == needed]
        return await self._member_of_any(caller.identity, refs, depth=0, seen=set())

    async def _group(self, ref: ValueRef, seen: set) -> list[ValueRef]:
        """The members of the HS_VLIST ``ref`` names; nothing past the lookup budget."""
        if ref.key in seen or ref.index == 0 or len(seen) >= MAX_GROUP_LOOKUPS:
            return []
        seen.add(ref.key)
        record = await self._record(ref.handle)
        group = record.value_at(ref.index) if record is not None else None
        if group is None or group.type_key != VLIST:
            return []
        try:
            return vlist_from_bytes(group.data)
        except IdresError:
            return []

    async def _member_of_any(self, identity: ValueRef, refs: list[ValueRef], depth: int, seen: set) -> bool:
        for ref in refs:
            if identity_matches(ref, identity):
                return True
        if depth >= MAX_GROUP_DEPTH:
            return False
        for ref in refs:
            members = await self._group(ref, seen)
            if members and await self._member_of_any(identity, members, depth + 1, seen):
                return True
        return False
