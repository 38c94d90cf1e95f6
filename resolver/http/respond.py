"""Building responses: JSON bodies in Handle.Net's key order, pretty/JSONP, gzip, CORS, status codes."""

from __future__ import annotations

import gzip
import re
from typing import Any

import orjson
from aiohttp import hdrs, web

from registry.errors import IdresError, ResponseCode

from .params import flag

JSON_TYPE = "application/json;charset=UTF-8"
JSONP_TYPE = "application/javascript;charset=UTF-8"
JSON_HEADERS = {hdrs.CONTENT_TYPE: JSON_TYPE}
_CALLBACK = re.compile(r"[^A-Za-z0-9_$]")

# responseCode -> HTTP status (handle-http-api.md §5)
_STATUS = {
    ResponseCode.SUCCESS: 200,
    ResponseCode.ERROR: 500,
    ResponseCode.SERVER_TOO_BUSY: 503,
    ResponseCode.PROTOCOL_ERROR: 400,
    ResponseCode.OPERATION_NOT_SUPPORTED: 501,
    ResponseCode.RECURSION_COUNT_TOO_HIGH: 500,
    ResponseCode.SERVER_BACKUP: 503,
    ResponseCode.HANDLE_NOT_FOUND: 404,
    ResponseCode.HANDLE_ALREADY_EXISTS: 409,
    ResponseCode.INVALID_HANDLE: 400,
    ResponseCode.VALUES_NOT_FOUND: 400,
    ResponseCode.VALUE_ALREADY_EXISTS: 409,
    ResponseCode.INVALID_VALUE: 400,
    ResponseCode.OUT_OF_DATE_SITE_INFO: 500,
    ResponseCode.SERVER_NOT_RESP: 400,
    ResponseCode.SERVICE_REFERRAL: 300,
    ResponseCode.PREFIX_REFERRAL: 300,
    ResponseCode.INVALID_ADMIN: 403,
    ResponseCode.INSUFFICIENT_PERMISSIONS: 403,
    ResponseCode.AUTHENTICATION_FAILED: 403,
    ResponseCode.INVALID_CREDENTIAL: 403,
}


def status_for(error: IdresError, *, credentials_accepted: bool) -> int:
    """The HTTP status of an error; "authentication needed" is 401 where credentials count, else 403."""
    if error.http_status is not None:
        return error.http_status
    if error.response_code == ResponseCode.AUTHENTICATION_NEEDED:
        return 401 if credentials_accepted else 403
    return _STATUS.get(error.response_code, 500)


def error_body(code: int, message: str | None, handle: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"responseCode": int(code)}
    if message:
        body["message"] = message
    if handle is not None:
        body["handle"] = handle
    return body


def json_response(request: web.Request, body: dict[str, Any] | list[Any], status: int = 200) -> web.Response:
    """A JSON response honouring ``pretty`` and ``callback`` (JSONP)."""
    query = request.query if request.query_string else None
    option = orjson.OPT_INDENT_2 if query is not None and flag(query, "pretty", False) else 0
    data = orjson.dumps(body, option=option)
    # JSONP only for anonymous requests: a script must never carry what credentials unlocked
    callback = query.get("callback") if query is not None and hdrs.AUTHORIZATION not in request.headers else None
    if callback:
        name = _CALLBACK.sub("", callback) or "callback"
        if name[0].isdigit():
            name = "_" + name
        return web.Response(body=name.encode() + b"(" + data + b");", status=status, content_type=None, headers={hdrs.CONTENT_TYPE: JSONP_TYPE})
    return bytes_response(request, data, status)


def accepts_gzip(request: web.Request) -> bool:
    """Whether Accept-Encoding lists gzip (or *) without q=0."""
    header = request.headers.get(hdrs.ACCEPT_ENCODING)
    if not header or "gzip" not in header and "*" not in header:
        return False
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


def compress(data: bytes) -> bytes:
    """gzip without a timestamp, so equal bodies compress to equal bytes."""
    return gzip.compress(data, 5, mtime=0)


def bytes_response(request: web.Request, data: bytes, status: int = 200, gzip_min: int | None = None,
                   compressed: bytes | None = None) -> web.Response:
    """Pre-rendered JSON; gzip-compressed (``compressed``, if already at hand) when the client accepts
    gzip and the body is large enough."""
    if gzip_min is not None and len(data) >= gzip_min and accepts_gzip(request):
        return web.Response(
            body=compressed if compressed is not None else compress(data),
            status=status,
            headers={hdrs.CONTENT_TYPE: JSON_TYPE, hdrs.CONTENT_ENCODING: "gzip", hdrs.VARY: "Accept-Encoding"},
        )
    return web.Response(body=data, status=status, headers=JSON_HEADERS)


CORS_METHODS = "GET,POST,HEAD,PUT,DELETE"
CORS_HEADERS = "X-Requested-With,Authorization,Origin,Accept,Content-Type"
_SIMPLE = {"cache-control", "content-language", "content-type", "expires", "last-modified", "pragma"}


def add_cors(request: web.Request, response: web.StreamResponse) -> None:
    """Jetty CrossOriginFilter's behaviour: echo the origin, no credentials, expose every other header."""
    origin = request.headers.get(hdrs.ORIGIN)
    if not origin:
        return
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers.add(hdrs.VARY, "Origin")
    exposed = sorted({k for k in response.headers if k.lower() not in _SIMPLE and not k.lower().startswith("access-control-")})
    if exposed:
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = ",".join(exposed + ["Content-Length"])


def preflight(request: web.Request) -> web.Response:
    response = web.Response(status=200)
    if request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_METHOD):
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = CORS_METHODS
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = CORS_HEADERS
        response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = "86400"
    return response
