"""Delegating a prefix to another node: writing (and removing) the HS_SITE values of ``0.NA/<prefix>``.

Only the node of the parent keeps a child's delegation: the prefix must be derived from one homed here
and must not be homed here itself. The record keeps its other values (the certificates the parent
issued, admins); a record left with nothing is deleted.
"""

from __future__ import annotations

from dataclasses import replace

from registry.delegation import delegation_values, without_delegation
from registry.errors import Conflict, HandleAlreadyExists, HandleNotFound, PrefixNotHomed, ProtocolError
from registry.model import Record, free_index, prefix_record_handle
from registry.pg.store import Store
from registry.values import SiteInfo

from ..core.authority import AuthoritySnapshot, Homed
from ..core.retry import retry_on_conflict


def check_delegable(authority: AuthoritySnapshot, prefix: str) -> None:
    """Refuse a prefix this node cannot delegate: homed here, or not derived from a prefix homed here."""
    if authority.is_homed(prefix):
        raise Conflict(f"prefix {prefix} is homed here: unhome it before delegating it to another node", handle=f"0.NA/{prefix}")
    if not isinstance(authority.answer_for(prefix_record_handle(prefix)), Homed):
        raise PrefixNotHomed(f"{prefix} is not derived from a prefix homed here: only the node of its parent delegates it",
                             handle=f"0.NA/{prefix}")


async def write_delegation(store: Store, authority: AuthoritySnapshot, prefix: str, sites: list[SiteInfo], now: int) -> Record:
    """Make ``0.NA/<prefix>`` name ``sites`` (HS_SITE, and HS_SITE.PREFIX for its derived prefixes)."""
    check_delegable(authority, prefix)
    if not sites:
        raise ProtocolError("give at least one site (node) to delegate to")
    handle = prefix_record_handle(prefix)

    async def attempt() -> Record:
        stored = await store.get(handle.key)
        kept = without_delegation(stored.record) if stored is not None else Record(handle)
        values = list(kept.values)
        for value in delegation_values(sites, now):
            values.append(replace(value, index=free_index(values, value.index)))
        new = kept.with_values(values)
        if stored is None:
            await store.create(new)
        else:
            await store.replace(new, stored.version)
        return new

    return await retry_on_conflict(attempt, also=(HandleAlreadyExists,), gave_up=f"{handle.text} kept changing; try again")


async def remove_delegation(store: Store, authority: AuthoritySnapshot, prefix: str) -> None:
    """Remove the delegation values of ``0.NA/<prefix>`` (the record goes when nothing else is left)."""
    check_delegable(authority, prefix)
    handle = prefix_record_handle(prefix)

    async def attempt() -> None:
        stored = await store.get(handle.key)
        if stored is None or len(without_delegation(stored.record).values) == len(stored.record.values):
            raise HandleNotFound(f"{prefix} is not delegated", handle=handle.text)
        kept = without_delegation(stored.record)
        if not kept.values:
            await store.delete(handle, stored.version)
        else:
            await store.replace(kept, stored.version)

    await retry_on_conflict(attempt, gave_up=f"{handle.text} kept changing; try again")
