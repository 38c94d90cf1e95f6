"""Every error becomes a JSON body with a responseCode; CORS on every response.

Handlers are wrapped by ``guarded`` rather than by an aiohttp middleware, so that the cache-hit path
(which cannot fail) pays for no wrapper at all. Registry errors carry their responseCode; aiohttp's
own HTTP errors are mapped as Handle.Net's HandleApiErrorHandler maps them; anything unexpected is
logged with its traceback and answered 500 with responseCode 2, never with the traceback. Paths and
methods no route serves get JSON answers from ``fallback``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from typing import Awaitable, Callable

from aiohttp import hdrs, web

from registry.errors import AuthenticationFailed, IdresError, ResponseCode, ServerUnavailable, TooManyRequests

from .callers import credentials_accepted
from .context import NODE
from .params import path_text
from .respond import add_cors, error_body, json_response, preflight, status_for

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HTTP_TO_CODE = {400: 4, 401: 402, 403: 403, 404: 4, 405: 4, 409: 4, 413: 4, 500: 2, 501: 4, 503: 3}
HANDLES_ROUTE = "/api/handles/"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE"})
_READS = frozenset({"GET", "HEAD", "POST"})  # POST resolves, with parameters in its body
RETRY_AFTER = "2"  # seconds a client should wait before asking again while the database is away
# a route variable matching any text, newlines included (``.*`` stops at a %0A, and aiohttp's own
# answer to an unmatched path is plain text): every path reaches a handler that answers JSON
ANY_TEXT = "(?s:.*)"
SOME_TEXT = "(?s:.+)"


def _handle_in_path(request: web.Request) -> str | None:
    """The handle of an /api/handles/… request, added to error bodies as Handle.Net does."""
    if not request.raw_path.startswith(HANDLES_ROUTE):
        return None
    try:
        return path_text(request, HANDLES_ROUTE) or None
    except IdresError:
        return None


def error_response(request: web.Request, error: IdresError) -> web.Response:
    accepted = credentials_accepted(request, request.app[NODE])
    status = status_for(error, credentials_accepted=accepted)
    handle = error.handle if error.handle is not None else _handle_in_path(request)
    response = json_response(request, error_body(error.response_code, error.message, handle), status)
    if status == 401:
        response.headers[hdrs.WWW_AUTHENTICATE] = 'Basic realm="handle"'
        if request.headers.get(hdrs.AUTHORIZATION, "")[:7].lower() == "handle ":
            reason = (error.message or "Identity not verified").replace('"', "'")
            response.headers.add(hdrs.WWW_AUTHENTICATE, f'Handle error="{reason}"')
    if isinstance(error, TooManyRequests):
        response.headers[hdrs.RETRY_AFTER] = str(error.retry_after)
    if status == 503:
        response.headers[hdrs.RETRY_AFTER] = RETRY_AFTER
    if status == 408:
        response.force_close()  # the rest of the body may still come: it is not read
    return response


def _logged(request: web.Request, error: IdresError) -> None:
    """What the log says of an error: one line for a failed login or an unexpected error; a database
    outage is counted (its start and end are logged once), not logged per request."""
    if isinstance(error, (AuthenticationFailed, TooManyRequests)):
        log.info("refused %s: %s", request.remote, error.message)
    elif isinstance(error, ServerUnavailable):
        request.app[NODE].health.refused(request.method not in _READS, error.cause or error.message)
    elif error.response_code in (ResponseCode.ERROR, ResponseCode.SERVER_TOO_BUSY):
        log.error("%s %s failed: %s", request.method, request.path, error.message)


def _http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    message = "the request body is over the size limit" if exc.status == 413 else exc.reason
    code = _HTTP_TO_CODE.get(exc.status, ResponseCode.PROTOCOL_ERROR if exc.status < 500 else ResponseCode.ERROR)
    return json_response(request, error_body(code, message, _handle_in_path(request)), exc.status)


def guarded(handler: Handler) -> Handler:
    """Turn every exception of ``handler`` into a JSON error response; add CORS headers."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except IdresError as error:
            _logged(request, error)
            response = error_response(request, error)
        except web.HTTPException as exc:
            response = _http_error_response(request, exc)
        except asyncio.CancelledError:
            raise
        except ConnectionResetError:  # the client went away mid-request: nobody to answer, nothing to fix
            log.debug("%s %s: the client closed the connection", request.method, request.path)
            body = error_body(ResponseCode.PROTOCOL_ERROR, "the connection closed before the request was read", None)
            response = json_response(request, body, 400)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("internal error %s on %s %s", incident, request.method, request.path)
            message = f"internal server error (incident {incident} in the server log)"
            body = error_body(ResponseCode.ERROR, message, _handle_in_path(request))
            response = json_response(request, body, 500)
        _observed(request, response.status, started)
        return with_cors(request, response)

    return wrapper


def _observed(request: web.Request, status: int, started: float) -> None:
    metrics = request.app[NODE].metrics
    if metrics is not None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "(unknown)"
        metrics.observe(route, request.method, status, time.perf_counter() - started)


def with_cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    if hdrs.ORIGIN in request.headers:
        add_cors(request, response)
    return response


def fallback(allowed: str | None) -> Handler:
    """The handler for what no route serves: CORS preflight, unknown methods, unknown paths."""

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.method == hdrs.METH_OPTIONS:
            return with_cors(request, preflight(request))
        if allowed is None:
            status, message = 404, f"Unknown HTTP API endpoint {request.method} {request.path}"
        elif request.method not in KNOWN_METHODS:
            status, message = 501, f"Unknown method {request.method}"
        else:
            status, message = 405, f"Method {request.method} is not allowed on {request.path}; use {allowed}"
        response = json_response(request, error_body(ResponseCode.PROTOCOL_ERROR, message, None), status)
        if status == 405:
            response.headers[hdrs.ALLOW] = allowed
        return with_cors(request, response)

    return answer


def add_resource(app: web.Application, path: str, handlers: dict[str, Handler], *, raw: tuple[str, ...] = ()) -> None:
    """A resource whose handlers are guarded (except the methods in ``raw``, which guard themselves)."""
    resource = app.router.add_resource(path)
    for method, handler in handlers.items():
        resource.add_route(method, handler if method in raw else guarded(handler))
    resource.add_route(hdrs.METH_ANY, fallback(",".join(handlers)))


def add_catch_all(app: web.Application) -> None:
    app.router.add_route(hdrs.METH_ANY, "/{tail:" + ANY_TEXT + "}", fallback(None))
