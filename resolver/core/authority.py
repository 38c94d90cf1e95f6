"""Who answers for a handle: an immutable snapshot of the prefixes homed here and delegated elsewhere.

Every part of a serving process that asks "is this handle ours?" (resolution, the sealer that signs
what is written, the registrar) reads the same ``CurrentAuthority``. Nobody changes a snapshot: a
writer builds a new one and replaces the current one in a single assignment, so a reader sees either
the old answer or the new one, never half of a change.

The longest prefix wins. A handle ``P/S`` is answered here if P is homed here, from this node's copy if
P is mirrored here (``Mirrored``: read like a homed prefix, written only by its follower), by a delegate
if P is delegated, and otherwise by the nearest ancestor of P whose delegation covers derived prefixes
(HS_SITE.PREFIX). A prefix record ``0.NA/X`` is answered here if X is homed here; otherwise by whoever
serves the prefixes derived from X's nearest ancestor with an entry: this node when that ancestor is
homed here (it keeps the records of its derived prefixes, delegations included) — even if X is
mirrored, the parent's own record wins —, the copy when X or that ancestor is mirrored, else that
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
class Mirrored:
    """The handle is under a prefix this node keeps a read-only copy of, followed from ``origin``."""

    prefix: str
    origin: str

    def describe(self) -> str:
        return f"{self.prefix} is a read-only mirror of {self.origin}"


@dataclass(frozen=True, slots=True)
class Unknown:
    """No prefix this node knows of covers the handle."""


UNKNOWN = Unknown()
Answer = Homed | Mirrored | Delegated | Unknown
Local = (Homed, Mirrored)  # answered from this node's store


class AuthoritySnapshot:
    """Prefix (comparison key) → who answers for it. Immutable; ``with_homed`` and ``with_delegation``
    return new snapshots."""

    __slots__ = ("_entries",)

    def __init__(self, homed: Iterable[str] = (), delegated: Mapping[str, Delegated] | None = None,
                 mirrored: Mapping[str, str] | None = None) -> None:
        entries: dict[str, Homed | Mirrored | Delegated] = {fold(p): d for p, d in (delegated or {}).items()}
        entries.update((fold(p), Mirrored(p, origin)) for p, origin in (mirrored or {}).items())
        entries.update((fold(p), Homed(p)) for p in homed)
        self._entries = entries

    def answer_for(self, handle: Handle) -> Answer:
        """Who answers for the handle (see the module's description)."""
        if handle.is_prefix_record:
            entry = self._entries.get(fold(handle.suffix))
            if isinstance(entry, Homed):
                return entry
            parent = self._derived(ancestors(handle.suffix)[1:], homed_serves=True)
            return entry if isinstance(entry, Mirrored) and not isinstance(parent, Homed) else parent
        entry = self._entries.get(fold(handle.prefix))
        if entry is not None:
            return entry
        return self._derived(ancestors(handle.prefix)[1:], homed_serves=False)

    def _derived(self, candidates: list[str], *, homed_serves: bool) -> Answer:
        """Who serves a prefix derived from the nearest of ``candidates`` with an entry."""
        for candidate in candidates:
            entry = self._entries.get(fold(candidate))
            if isinstance(entry, Local):
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

    def answers_locally(self, handle: Handle) -> bool:
        """Whether the handle is read from this node's store: homed or mirrored here."""
        return isinstance(self.answer_for(handle), Local)

    def local_only(self) -> "AuthoritySnapshot":
        """The homed and mirrored prefixes of this snapshot, without its delegations."""
        return AuthoritySnapshot(self.homed, mirrored={m.prefix: m.origin for m in self.mirrored()})

    def is_homed(self, prefix: str) -> bool:
        return isinstance(self._entries.get(fold(prefix)), Homed)

    def is_mirrored(self, prefix: str) -> bool:
        return isinstance(self._entries.get(fold(prefix)), Mirrored)

    def mirrored(self) -> list[Mirrored]:
        return [e for e in self._entries.values() if isinstance(e, Mirrored)]

    @property
    def homed(self) -> tuple[str, ...]:
        return tuple(e.prefix for e in self._entries.values() if isinstance(e, Homed))

    def delegated(self) -> list[Delegated]:
        return [e for e in self._entries.values() if not isinstance(e, Local)]

    def with_homed(self, prefix: str) -> "AuthoritySnapshot":
        """This snapshot with ``prefix`` homed here as well."""
        return self._with(fold(prefix), Homed(prefix))

    def with_delegation(self, prefix: str, delegation: Delegated | None) -> "AuthoritySnapshot":
        """This snapshot with ``prefix`` delegated as given (None: not delegated). A homed prefix stays homed,
        a mirrored one mirrored."""
        if isinstance(self._entries.get(fold(prefix)), Local):
            return self
        return self._with(fold(prefix), delegation)

    def _with(self, key: str, entry: Homed | Mirrored | Delegated | None) -> "AuthoritySnapshot":
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
