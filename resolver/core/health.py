"""The database as a serving process sees it: available or not, with one log line per change of state.

While PostgreSQL is unreachable, every miss and every write of every client fails the same way; a log
line each would bury the one line that matters. ``DatabaseHealth`` logs when the database is lost and
when it is back — with how long it was gone and how many reads and writes were refused meanwhile —
and counts the refusals in between instead of logging them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

log = logging.getLogger("idres.database")


class DatabaseHealth:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.available = True
        self.since = clock()
        self.refused_reads = 0
        self.refused_writes = 0
        self.refused_total_reads = 0  # since the process started: for metrics
        self.refused_total_writes = 0
        self.outages = 0

    def lost(self, cause: str) -> None:
        """The database cannot be reached (a query failed, the change follower lost its connection)."""
        if not self.available:
            return
        self.available, self.since = False, self._clock()
        self.outages += 1
        log.warning("database unavailable (%s): answering cached records; misses and writes get 503 until it is back", cause)

    def refused(self, write: bool, cause: str) -> None:
        """A request was answered 503 because the database could not be reached."""
        self.lost(cause)
        if write:
            self.refused_writes += 1
            self.refused_total_writes += 1
        else:
            self.refused_reads += 1
            self.refused_total_reads += 1

    def back(self, caught_up: int = 0) -> None:
        """The database answers again; ``caught_up`` changes of the log were applied on return."""
        if self.available:
            return
        gone = self._clock() - self.since
        log.warning("database back after %.1f s: %d reads and %d writes were refused meanwhile; %d changes caught up",
                    gone, self.refused_reads, self.refused_writes, caught_up)
        self.available, self.since = True, self._clock()
        self.refused_reads = self.refused_writes = 0

    def state(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "for": round(self._clock() - self.since, 1),
            "refusedReads": self.refused_reads,
            "refusedWrites": self.refused_writes,
            "outages": self.outages,
        }
