"""Who answers for a handle: an immutable snapshot of the prefixes homed here and delegated elsewhere.

Every part of a serving process that asks "is this handle ours?" (resolution, the sealer that signs
what is written, the registrar) reads the same ``CurrentAuthority``. Nobody changes a snapshot: a
writer builds a new one and replaces the current one in a single assignment, so a reader sees either
the old answer or the new one, never half of a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from registry.model import Handle, ancestors, fold
from registry.values import SiteInfo


@dataclass(frozen=True, slots=True)
class Homed:
    """The handle is under a prefix this node serves (``prefix`` as the operator spelled it)."""

    prefix: str


@dataclass(frozen=True, slots=True)
class Delegated:
    """The handle is under a prefix another node serves, described by its HS_SITE values."""

    prefix: str
    sites: tuple[SiteInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class Unknown:
    """No prefix this node knows of covers the handle."""


UNKNOWN = Unknown()
Answer = Homed | Delegated | Unknown


class AuthoritySnapshot:
    """Prefix (comparison key) → who answers for it. Immutable; ``with_homed`` returns a new snapshot."""

    __slots__ = ("_entries",)

    def __init__(self, homed: Iterable[str] = (), delegated: Mapping[str, Delegated] | None = None) -> None:
        entries: dict[str, Homed | Delegated] = {fold(p): d for p, d in (delegated or {}).items()}
        entries.update((fold(p), Homed(p)) for p in homed)
        self._entries = entries

    def answer_for(self, handle: Handle) -> Answer:
        """Who answers for the handle: its prefix's entry; for ``0.NA/X``, X's or its nearest ancestor's."""
        candidates = ancestors(handle.suffix) if handle.is_prefix_record else (handle.prefix,)
        for candidate in candidates:
            entry = self._entries.get(fold(candidate))
            if entry is not None:
                return entry
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

    def with_homed(self, prefix: str) -> "AuthoritySnapshot":
        """This snapshot with ``prefix`` homed here as well."""
        new = AuthoritySnapshot()
        new._entries = {**self._entries, fold(prefix): Homed(prefix)}
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
