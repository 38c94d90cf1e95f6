"""What a worker accepts from the network before a request reaches a handler.

- **Deadlines.** A connection must send a complete request head within ``IDRES_HEADER_TIMEOUT`` of
  opening or of its previous answer (aiohttp's keep-alive timer, which closes a connection waiting for
  a request, partial or not: a slowloris is closed); a body must arrive within
  ``IDRES_BODY_TIMEOUT`` (``http/params.py``).
- **Caps.** Request lines and header fields over ``IDRES_MAX_URL_BYTES`` / ``IDRES_MAX_HEADER_BYTES``
  are refused by the parser. Open connections are capped per worker (``IDRES_MAX_CONNECTIONS``, and
  never more than the file descriptors allow) and per client address
  (``IDRES_MAX_CONNECTIONS_PER_ADDRESS``): at a cap, the oldest idle connection of the address (or of
  all) is closed — one with no request read or in progress, among the oldest ``IDLE_SCAN``; failing
  that the oldest, gracefully, after its answer — so that a flood of idle connections cannot keep a
  new client out. Each time connections are closed for room the log says
  so, at most once every ``REFUSAL_LOG_INTERVAL`` seconds, with the count.
- **Errors the parser finds** (malformed request line, invalid bytes, oversized headers or URL) are
  answered with the JSON error shape and a responseCode, like every other bad input, and logged at
  DEBUG only: they are the client's.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import resource
import time

import orjson
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from registry.errors import ResponseCode

from ..config import Settings

log = logging.getLogger(__name__)
RESERVED_DESCRIPTORS = 256  # for the database pool, listening sockets, files, upstream connections, and one
# accept burst (the kernel's listen backlog, 128) taken before any connection is closed for room
REFUSAL_LOG_INTERVAL = 10.0
IDLE_SCAN = 64  # connections looked at, oldest first, for an idle one to close
JSON_TYPE = "application/json;charset=UTF-8"


def raise_descriptor_limit() -> int:
    """Raise this process's open-file limit to its hard limit; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(settings: Settings, descriptors: int) -> int:
    """The connections one worker keeps open: the setting, within the file descriptors it has."""
    return max(16, min(settings.front_door.max_connections, descriptors - RESERVED_DESCRIPTORS))


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering what its parser refuses with the JSON error shape."""

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None, message: str | None = None):
        if status >= 500:
            self.logger.error("error handling request from %s", request.remote, exc_info=exc)
            text = "internal server error"
        else:
            self.logger.debug("refused a malformed request from %s: %s", request.remote, message or exc)
            text = f"the request is not valid HTTP: {_reason(exc, message)}"
        if request.writer.output_size > 0:
            raise ConnectionError("a response was sent already; the connection is closed instead")
        code = ResponseCode.ERROR if status >= 500 else ResponseCode.PROTOCOL_ERROR
        body = orjson.dumps({"responseCode": int(code), "message": text})
        response = web.Response(status=status, body=body, content_type=None, headers={"Content-Type": JSON_TYPE})
        response.force_close()
        return response


class FrontDoorServer(web.Server):
    """aiohttp's server with connection caps per worker and per client address."""

    def __init__(self, base: web.Server, cap: int, per_address: int) -> None:
        super().__init__(base.request_handler, request_factory=base.request_factory,
                         handler_cancellation=base.handler_cancellation, loop=base._loop, **base._kwargs)
        self.cap, self.per_address = cap, per_address
        self._by_address: dict[str, collections.OrderedDict] = collections.defaultdict(collections.OrderedDict)
        self._opened: collections.OrderedDict = collections.OrderedDict()
        self.closed_for_room = 0
        self._reported = 0
        self._last_report = 0.0

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        address = _address(transport)
        mine = self._by_address[address]
        if len(mine) >= self.per_address:
            self._make_room(_oldest_idle(mine))
        elif len(self._opened) >= self.cap:
            self._make_room(_oldest_idle(self._opened))
        mine[handler] = address
        self._opened[handler] = address

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        address = self._opened.pop(handler, None)
        if address is not None:
            mine = self._by_address.get(address)
            if mine is not None:
                mine.pop(handler, None)
                if not mine:
                    del self._by_address[address]

    def _make_room(self, oldest: RequestHandler) -> None:
        """Close the oldest connection: now when idle (its descriptor freed at once), after its answer when busy."""
        idle = not oldest._request_in_progress and not oldest._messages
        oldest.close()
        if idle and oldest.transport is not None:
            oldest.transport.close()
        address = self._opened.pop(oldest, None)
        if address is not None:
            self._by_address[address].pop(oldest, None)
        self.closed_for_room += 1
        now = time.monotonic()
        if now - self._last_report >= REFUSAL_LOG_INTERVAL:
            log.warning("connections at their cap (%d per worker, %d per address): closed %d of the oldest to make room",
                        self.cap, self.per_address, self.closed_for_room - self._reported)
            self._reported, self._last_report = self.closed_for_room, now

    @property
    def open_connections(self) -> int:
        return len(self._opened)


def _oldest_idle(connections: collections.OrderedDict) -> RequestHandler:
    """The oldest connection with no request read or in progress, among the oldest few; else the oldest."""
    for handler, _ in zip(connections, range(IDLE_SCAN)):
        if not handler._request_in_progress and not handler._messages:
            return handler
    return next(iter(connections))


def _reason(exc: BaseException | None, message: str | None) -> str:
    """The parser's reason, as one short line (its messages quote the offending bytes at length)."""
    if isinstance(exc, LineTooLong):
        return "a request line or header field is too long (IDRES_MAX_URL_BYTES, IDRES_MAX_HEADER_BYTES)"
    first = str(message or exc or "bad request").split("\n", 1)[0].strip().rstrip(":")
    return first[:200]


def _address(transport: asyncio.Transport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


class FrontDoorRunner(web.AppRunner):
    """An AppRunner whose server is the front door."""

    def __init__(self, app: web.Application, settings: Settings, descriptors: int, **kwargs) -> None:
        door = settings.front_door
        super().__init__(app, keepalive_timeout=door.header_timeout, max_line_size=door.max_url_bytes,
                         max_field_size=door.max_header_bytes, **kwargs)
        self._cap = connection_cap(settings, descriptors)
        self._per_address = door.max_connections_per_address
        self.front_door: FrontDoorServer | None = None

    async def _make_server(self) -> web.Server:
        self.front_door = FrontDoorServer(await super()._make_server(), self._cap, self._per_address)
        return self.front_door
