"""Counting, per prefix, what a node resolves and registers: in memory, cheap enough for the hit path.

Every cache entry holds the ``Tally`` of its prefix, so answering a cached record costs one increment
of an attribute (``hits`` or ``not_found_hits``). Answers off the hit path count ``resolutions`` and
``not_found``, writes count ``registrations``. Counters only grow; their readers (the hourly
statistics kept in PostgreSQL, the metrics) each remember what they have taken already and take the
difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.model import Handle, fold

COUNTS = ("hits", "not_found_hits", "resolutions", "not_found", "registrations")


class Tally:
    __slots__ = ("prefix", *COUNTS)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.hits = self.not_found_hits = self.resolutions = self.not_found = self.registrations = 0

    def counts(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in COUNTS)


@dataclass(frozen=True)
class PrefixCounts:
    """What a prefix saw between two readings."""

    prefix: str
    resolutions: int  # found, hits included
    not_found: int  # not found, hits included
    registrations: int
    hits: int  # of which answered from the cache on the hit path
    not_found_hits: int


class Statistics:
    def __init__(self) -> None:
        self._tallies: dict[str, Tally] = {}

    def tally(self, handle: Handle) -> Tally:
        """The tally of the prefix a handle is under (X for ``0.NA/X``)."""
        return self.of_prefix(handle.authority)

    def of_prefix(self, prefix: str) -> Tally:
        key = fold(prefix)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = Tally(prefix)
        return tally

    def reader(self) -> "StatisticsReader":
        return StatisticsReader(self)

    def tallies(self) -> list[Tally]:
        return list(self._tallies.values())


class StatisticsReader:
    """One reader of the counters: each ``take`` returns what grew since its previous one."""

    def __init__(self, statistics: Statistics) -> None:
        self._statistics = statistics
        self._seen: dict[int, tuple[int, ...]] = {}

    def take(self) -> list[PrefixCounts]:
        taken = []
        for tally in self._statistics.tallies():
            now = tally.counts()
            before = self._seen.get(id(tally), (0,) * len(COUNTS))
            if now != before:
                hits, nf_hits, resolutions, not_found, registrations = (a - b for a, b in zip(now, before))
                taken.append(PrefixCounts(tally.prefix, resolutions + hits, not_found + nf_hits, registrations, hits, nf_hits))
                self._seen[id(tally)] = now
        return taken
