"""The one middleware: every error becomes a JSON body with a responseCode; CORS on every response.

Registry errors carry their responseCode; aiohttp's own HTTP errors (no route, wrong method, body too
large) are mapped as Handle.Net's HandleApiErrorHandler maps them; anything unexpected is logged with
its traceback and answered 500 with responseCode 2, never with the traceback.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiohttp import hdrs, web

from registry.errors import AuthenticationFailed, IdresError, ResponseCode

from ..node import NODE
from .callers import credentials_accepted
from .respond import add_cors, error_body, json_response, preflight, status_for

log = logging.getLogger(__name__)

_HTTP_TO_CODE = {400: 4, 401: 402, 403: 403, 404: 4, 405: 4, 409: 4, 413: 4, 500: 2, 501: 4, 503: 3}
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE"})


def _error_response(request: web.Request, error: IdresError) -> web.Response:
    accepted = credentials_accepted(request, request.app[NODE])
    status = status_for(error, credentials_accepted=accepted)
    response = json_response(request, error_body(error.response_code, error.message, error.handle), status)
    if status == 401:
        response.headers[hdrs.WWW_AUTHENTICATE] = 'Basic realm="handle"'
    return response


def _http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    if status == 405 and request.method not in KNOWN_METHODS:
        status, message = 501, f"Unknown method {request.method}"
    elif status == 404:
        message = f"Unknown HTTP API endpoint {request.method} {request.path}"
    elif status == 405:
        message = f"Method {request.method} is not allowed on {request.path}"
    elif status == 413:
        message = "the request body is over the size limit"
    else:
        message = exc.reason
    code = _HTTP_TO_CODE.get(status, ResponseCode.PROTOCOL_ERROR if status < 500 else ResponseCode.ERROR)
    response = json_response(request, error_body(code, message, None), status)
    if status == 405 and "Allow" in exc.headers:
        response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
    return response


@web.middleware
async def api_middleware(request: web.Request, handler) -> web.StreamResponse:
    if request.method == hdrs.METH_OPTIONS:
        response: web.StreamResponse = preflight(request)
    else:
        try:
            response = await handler(request)
        except IdresError as error:
            if isinstance(error, AuthenticationFailed):
                log.info("authentication failed from %s: %s", request.remote, error.message)
            response = _error_response(request, error)
        except web.HTTPException as exc:
            response = _http_error_response(request, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("internal error %s on %s %s", incident, request.method, request.path)
            body = error_body(ResponseCode.ERROR, f"internal server error (incident {incident} in the server log)", None)
            response = json_response(request, body, 500)
    if hdrs.ORIGIN in request.headers:
        add_cors(request, response)
    return response
