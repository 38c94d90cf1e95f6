"""Keeping the authority snapshot in line with the store: homed prefixes, and the delegations that the
prefix records held here describe.

``reload`` builds the snapshot afresh (at start, after a home or unhome); ``refresh`` updates the
delegations of the prefix records a change touched, so that a new delegation, a changed site or an
undelegation takes effect in every worker within the change follower's bound. When who answers for
something changes, the cache is emptied: its answers may have come from a node that no longer serves.
"""

from __future__ import annotations

from typing import Callable, Iterable, Protocol

from registry.delegation import delegation_of
from registry.errors import IdresError
from registry.model import NA_KEY, Handle, fold
from registry.records import StoredRecord

from ..core.authority import AuthoritySnapshot, CurrentAuthority, Local


class PrefixSource(Protocol):
    async def homed_prefixes(self) -> list[str]: ...

    async def mirrored_prefixes(self) -> dict[str, str]: ...

    async def prefix_records(self) -> list[StoredRecord]: ...

    async def get(self, key: str) -> StoredRecord | None: ...


class AuthorityKeeper:
    def __init__(self, store: PrefixSource, current: CurrentAuthority, on_change: Callable[[], None]) -> None:
        self._store = store
        self._current = current
        self._on_change = on_change

    async def reload(self) -> None:
        """A new snapshot of who answers for what, from the store; the cache starts afresh."""
        self._current.replace(await load_snapshot(self._store))
        self._on_change()

    async def refresh(self, keys: Iterable[str]) -> None:
        """Take in the delegations of these changed records (comparison keys; others are passed over)."""
        snapshot = before = self._current.snapshot
        for key in keys:
            if not key.startswith(NA_KEY + "/"):
                continue
            stored = await self._store.get(key)
            try:
                record = stored.record if stored is not None else None
            except IdresError:
                record = None
            prefix = record.handle.suffix if record is not None else key[len(NA_KEY) + 1:]
            held = record is not None and _held_as_parent(before.local_only(), record.handle)
            snapshot = snapshot.with_delegation(prefix, delegation_of(prefix, record) if held else None)
        if _delegations(snapshot) != _delegations(before):
            self._current.replace(snapshot)
            self._on_change()


async def load_snapshot(store: PrefixSource) -> AuthoritySnapshot:
    """Homed and mirrored prefixes, and the delegations described by the prefix records this node is
    authoritative for: those of prefixes derived from a homed (or mirrored) one (a record left behind by
    an unhomed prefix, or copied from elsewhere, delegates nothing)."""
    homed = AuthoritySnapshot(await store.homed_prefixes(), mirrored=await store.mirrored_prefixes())
    delegated = {}
    for stored in await store.prefix_records():
        try:
            record = stored.record
        except IdresError:
            continue  # an unreadable record delegates nothing
        if _held_as_parent(homed, record.handle) and (delegation := delegation_of(record.handle.suffix, record)) is not None:
            delegated[record.handle.suffix] = delegation
    return AuthoritySnapshot(homed.homed, delegated, {m.prefix: m.origin for m in homed.mirrored()})


def _held_as_parent(local: AuthoritySnapshot, handle: Handle) -> bool:
    """Whether this node keeps ``0.NA/X`` as the node of X's parent: an ancestor of X is homed (or
    mirrored) here, and the record is not X's own."""
    answer = local.answer_for(handle)
    return isinstance(answer, Local) and fold(answer.prefix) != fold(handle.suffix)


def _delegations(snapshot: AuthoritySnapshot) -> dict[str, object]:
    return {fold(d.prefix): d for d in snapshot.delegated()}
