"""Watching the embedded PostgreSQL of a node: when its server dies, start it again, with back-off.

A lost connection is not a dead server: the watch looks at the server itself (``postmaster.pid``
naming a live postmaster of the node's data directory). It logs each step once (died, restarting,
back), and publishes the state in ``<data dir>/postgres.state`` for the workers' ``/readyz`` and for
``idres status``. An external database (``--dsn``) is never watched, started or stopped.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from registry.errors import ConfigurationError
from registry.pg.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


class DatabaseWatch:
    def __init__(self, embedded: EmbeddedPostgres, clock: Callable[[], float] = time.time) -> None:
        self._embedded = embedded
        self._clock = clock
        self._backoff = FIRST_BACKOFF
        self._next_try = 0.0
        self.state: dict = {}
        self._publish("running", restarts=0, since=clock(), lastError=None)

    def _publish(self, state: str, **changes: object) -> None:
        self.state = {**self.state, "state": state, "pid": self._embedded.postmaster(), **changes}
        self._embedded.write_state(self.state)

    def check(self) -> None:
        """Look at the server; start it again if it died (not more often than the back-off allows)."""
        if self.state["state"] == "running":
            if self._embedded.postmaster() is not None:
                return
            log.warning("the embedded PostgreSQL in %s stopped; starting it again", self._embedded.pgdata)
            self._publish("down", since=self._clock())
        if self._clock() < self._next_try:
            return
        try:
            self._embedded.restart()
        except ConfigurationError as exc:
            if self.state.get("lastError") != exc.message:
                log.warning("%s; trying again with back-off (up to %.0f s)", exc.message, MAX_BACKOFF)
            self._next_try = self._clock() + self._backoff
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
            self._publish("down", lastError=exc.message)
            return
        log.warning("the embedded PostgreSQL is running again after %.1f s", self._clock() - self.state["since"])
        self._backoff, self._next_try = FIRST_BACKOFF, 0.0
        self._publish("running", since=self._clock(), restarts=self.state["restarts"] + 1, lastError=None)
