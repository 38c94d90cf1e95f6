"""One worker process: its node, its HTTP listeners on the node's shared ports, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing.connection
import signal
import sys
from typing import Callable

from aiohttp import web

from ..config import Settings
from ..http.app import create_app
from ..http.tls import server_context
from .access_log import access_log_options
from .front_door import FrontDoorRunner, raise_descriptor_limit
from .logs import configure_logging
from .node import Node
from .sockets import BACKLOG, listening


async def run_worker(settings: Settings, dsn: str, on_ready: Callable[[], None], stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then shut down gracefully: requests in flight finish, then the node closes."""
    node = await Node.open(settings, dsn, shared_metrics=settings.metrics_path)
    try:
        logs = access_log_options(settings.operation.access_log, settings.observability.access_log_format,
                                  settings.observability.access_log_sample)
        runner = FrontDoorRunner(create_app(node), settings, raise_descriptor_limit(),
                                 shutdown_timeout=settings.listen.shutdown_timeout, handle_signals=False, **logs)
        await runner.setup()
        node.front_door = runner.front_door
        node.start()
        try:
            await _listen(runner, settings)
            on_ready()
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        await node.close()


async def _listen(runner: web.AppRunner, settings: Settings) -> None:
    listen = settings.listen
    await web.SockSite(runner, listening(listen.host, listen.port), backlog=BACKLOG).start()
    context = server_context(settings)
    if context is not None and listen.tls_port is not None:
        await web.SockSite(runner, listening(listen.host, listen.tls_port), ssl_context=context, backlog=BACKLOG).start()


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
    configure_logging(settings.operation.log_level, f"worker {number}")
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
