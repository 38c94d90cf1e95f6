"""Who answers for a handle: an immutable snapshot of the prefixes homed here and delegated elsewhere.

Every part of a serving process that asks "is this handle ours?" (resolution, the sealer that signs
what is written, the registrar) reads the same ``CurrentAuthority``. Nobody changes a snapshot: a
writer builds a new one and replaces the current one in a single assignment, so a reader sees either
the old answer or the new one, never half of a change.

The longest prefix wins. A handle ``P/S`` is answered here if P is homed here, by a delegate if P is
delegated, and otherwise by the nearest ancestor of P whose delegation covers derived prefixes
(HS_SITE.PREFIX). A prefix record ``0.NA/X`` is answered here if X is homed here; otherwise by whoever
serves the prefixes derived from X's nearest ancestor with an entry: this node when that ancestor is
homed here (it keeps the records of its derived prefixes, delegations included), else that
ancestor's delegate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from registry.delegation import Delegation
from registry.model import Handle, ancestors, fold

Delegated = Delegation


@dataclass(frozen=True, slots=True)
class Homed:
    """The handle is under a prefix this node serves (``prefix`` as the operator spelled it)."""

    prefix: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """No prefix this node knows of covers the handle."""


UNKNOWN = Unknown()
Answer = Homed | Delegated | Unknown


class AuthoritySnapshot:
    """Prefix (comparison key) → who answers for it. Immutable; ``with_homed`` and ``with_delegation``
    return new snapshots."""

    __slots__ = ("_entries",)

    def __init__(self, homed: Iterable[str] = (), delegated: Mapping[str, Delegated] | None = None) -> None:
        entries: dict[str, Homed | Delegated] = {fold(p): d for p, d in (delegated or {}).items()}
        entries.update((fold(p), Homed(p)) for p in homed)
        self._entries = entries

    def answer_for(self, handle: Handle) -> Answer:
        """Who answers for the handle (see the module's description)."""
        if handle.is_prefix_record:
            if self.is_homed(handle.suffix):
                return self._entries[fold(handle.suffix)]
            return self._derived(ancestors(handle.suffix)[1:], homed_serves=True)
        entry = self._entries.get(fold(handle.prefix))
        if entry is not None:
            return entry
        return self._derived(ancestors(handle.prefix)[1:], homed_serves=False)

    def _derived(self, candidates: list[str], *, homed_serves: bool) -> Answer:
        """Who serves a prefix derived from the nearest of ``candidates`` with an entry."""
        for candidate in candidates:
            entry = self._entries.get(fold(candidate))
            if isinstance(entry, Homed):
                return entry if homed_serves else UNKNOWN
            if entry is not None and entry.covers_derived:
                return entry.for_derived()
        return UNKNOWN

    def covering(self, handle: Handle) -> str | None:
        """The homed prefix that answers for the handle, as spelled when it was homed; None if not homed here."""
        answer = self.answer_for(handle)
        return answer.prefix if isinstance(answer, Homed) else None

    def covers(self, handle: Handle) -> bool:
        return self.covering(handle) is not None

    def is_homed(self, prefix: str) -> bool:
        return isinstance(self._entries.get(fold(prefix)), Homed)

    @property
    def homed(self) -> tuple[str, ...]:
        return tuple(e.prefix for e in self._entries.values() if isinstance(e, Homed))

    def delegated(self) -> list[Delegated]:
        return [e for e in self._entries.values() if not isinstance(e, Homed)]

    def with_homed(self, prefix: str) -> "AuthoritySnapshot":
        """This snapshot with ``prefix`` homed here as well."""
        return self._with(fold(prefix), Homed(prefix))

    def with_delegation(self, prefix: str, delegation: Delegated | None) -> "AuthoritySnapshot":
        """This snapshot with ``prefix`` delegated as given (None: not delegated). A homed prefix stays homed."""
        if self.is_homed(prefix):
            return self
        return self._with(fold(prefix), delegation)

    def _with(self, key: str, entry: Homed | Delegated | None) -> "AuthoritySnapshot":
        new = AuthoritySnapshot()
        new._entries = {k: v for k, v in self._entries.items() if k != key}
        if entry is not None:
            new._entries[key] = entry
        return new

    def __len__(self) -> int:
        """How many prefixes are homed here."""
        return len(self.homed)


class CurrentAuthority:
    """The snapshot in force for one process; ``replace`` swaps it in one assignment."""

    __slots__ = ("snapshot",)

    def __init__(self, snapshot: AuthoritySnapshot | None = None) -> None:
        self.snapshot = snapshot if snapshot is not None else AuthoritySnapshot()

    def replace(self, snapshot: AuthoritySnapshot) -> None:
        self.snapshot = snapshot
