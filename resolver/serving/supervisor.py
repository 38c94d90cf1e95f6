"""``idres serve``: prepare the database, then run N worker processes on shared SO_REUSEPORT ports.

The supervisor starts the embedded PostgreSQL if no DSN is set, checks (or, for a brand-new embedded
database, creates) the schema, binds the ports to learn them (port 0 picks free ones), and starts the
workers; each worker binds its own socket to the same ports and the kernel spreads connections. SIGTERM
or SIGINT stops the workers gracefully (in-flight requests finish, up to ``shutdown_timeout``), then
the embedded database. A worker that dies is restarted, and so is the embedded PostgreSQL when its
server dies (database_watch.py).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import signal
import threading
import time
from typing import Callable

from registry.pg.embedded import EmbeddedPostgres

from ..config import Settings, share_metrics_directory
from ..http.tls import server_context
from ..ops.bootstrap import Prepared, prepare_database
from ..resolution.upstream import load_trust_anchor
from .budget import within_connection_budget
from .database_watch import DatabaseWatch
from .metrics import clear_directory, forget_process
from .sockets import reserve_port
from .worker import worker_main

log = logging.getLogger(__name__)
READY_TIMEOUT = 120.0
RESTART_BACKOFF = 1.0


class Supervisor:
    """Starts the workers, restarts those that die, and stops them all on a signal."""

    def __init__(self, settings: Settings, dsn: str, watch: DatabaseWatch | None = None) -> None:
        self.settings = settings
        self.dsn = dsn
        self._watch = watch
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: dict[int, multiprocessing.process.BaseProcess] = {}
        self._receiver, self._sender = self._ctx.Pipe(duplex=False)
        self._stopping = threading.Event()

    def _start(self, number: int) -> None:
        process = self._ctx.Process(
            target=worker_main,
            args=(self.settings.model_dump_json(), self.dsn, self._sender, number),
            name=f"idres-worker-{number}",
            daemon=False,
        )
        process.start()
        self._workers[number] = process

    def run(self, on_ready: Callable[[list[int]], None]) -> int:
        clear_directory(self.settings.metrics_path)
        share_metrics_directory(self.settings.metrics_path)  # the workers inherit it
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())
        for number in range(self.settings.listen.workers):
            self._start(number)
        if not self._await_ready():
            self._stop_all()
            return 1
        on_ready([p.pid for p in self._workers.values()])
        while not self._stopping.is_set():
            sentinels = {p.sentinel: n for n, p in self._workers.items()}
            for ready in multiprocessing.connection.wait([*sentinels, self._receiver], timeout=0.5):
                if ready is self._receiver:
                    self._receiver.recv()
                elif not self._stopping.is_set():
                    number = sentinels[ready]
                    self._workers[number].join()
                    forget_process(self.settings.metrics_path, self._workers[number].pid)
                    log.error("worker %d exited with code %s; restarting it", number, self._workers[number].exitcode)
                    time.sleep(RESTART_BACKOFF)
                    self._start(number)
            if self._watch is not None and not self._stopping.is_set():
                self._watch.check()
        self._stop_all()
        return 0

    def _await_ready(self) -> bool:
        pending = set(self._workers)
        deadline = time.monotonic() + READY_TIMEOUT
        while pending and not self._stopping.is_set():
            if any(not self._workers[n].is_alive() for n in pending):
                log.error("a worker failed to start; see its log above")
                return False
            if self._receiver.poll(max(0.0, min(0.5, deadline - time.monotonic()))):
                _, number = self._receiver.recv()
                pending.discard(number)
            elif time.monotonic() > deadline:
                log.error("workers did not become ready within %.0f s", READY_TIMEOUT)
                return False
        return not pending

    def _stop_all(self) -> None:
        for process in self._workers.values():
            if process.is_alive():
                process.terminate()  # SIGTERM: graceful shutdown in the worker
        deadline = time.monotonic() + self.settings.listen.shutdown_timeout + 5
        for process in self._workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker %s did not stop in time; killing it", process.name)
                process.kill()
                process.join()


def _reserve_ports(settings: Settings) -> tuple[list, Settings]:
    """Bind the HTTP and HTTPS ports (port 0 picks free ones); refuse ports another process holds."""
    reserved = [reserve_port(settings.listen.host, settings.listen.port)]
    try:
        settings = settings.with_changes(port=reserved[0].getsockname()[1])
        if settings.listen.tls_port is not None:
            reserved.append(reserve_port(settings.listen.host, settings.listen.tls_port))
            settings = settings.with_changes(tls_port=reserved[1].getsockname()[1])
    except BaseException:
        reserved[0].close()
        raise
    return reserved, settings


def _check_before_starting(settings: Settings) -> None:
    """What can be checked without the database: the TLS certificate (made now if it is the self-signed
    one and missing) and the trust root. Runs before the embedded PostgreSQL is created or started."""
    if settings.resolution.trust_root is not None:
        load_trust_anchor(settings.resolution.trust_root, settings.signing.trust_root_handle)
    server_context(settings)


def serve(settings: Settings, announce: Callable[[Settings, Prepared, list[int]], None]) -> int:
    """Run a node until signalled; ``announce`` is called once every worker is listening. Ports, TLS
    files and the trust root are checked before anything else happens."""
    reserved, settings = _reserve_ports(settings)
    try:
        _check_before_starting(settings)
        embedded = EmbeddedPostgres(settings.storage.data_dir) if settings.storage.dsn is None else None
        dsn = embedded.start() if embedded is not None else settings.storage.dsn
        try:
            settings = within_connection_budget(settings, embedded is not None)
            prepared = asyncio.run(prepare_database(settings, dsn, embedded is not None))
            if prepared.demo_admin is not None:
                demo = str(prepared.demo_admin.identity)
                settings = settings.with_changes(server_admins=(*settings.auth.server_admins, demo))
            watch = DatabaseWatch(embedded) if embedded is not None else None
            return Supervisor(settings, dsn, watch).run(lambda pids: announce(settings, prepared, pids))
        finally:
            if embedded is not None:
                embedded.stop()
    finally:
        for sock in reserved:
            sock.close()
