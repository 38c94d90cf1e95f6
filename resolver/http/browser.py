"""The browser front, as Handle.Net's proxy (hdl.handle.net) has it: ``GET /<handle>`` redirects to the
record's web address, or shows its public values as a page; ``GET /`` is a page with a lookup form.

What ``/<handle>`` answers depends on what the client asks for:

- ``?noredirect``, or an ``Accept`` that names ``text/html`` and no wildcard: the record as an HTML page;
- an ``Accept`` that prefers ``application/json``: the REST answer, as ``/api/handles/<handle>`` gives it;
- anything else (a browser, which also accepts ``*/*``; curl): 302 to the record's location
  (``registry.locations``). A record without one, or an error, is shown as a page to clients that accept
  HTML, and answered as the REST API answers it to the others.

Resolution is the REST path's: the engine answers (from the cache, the store, or the node a prefix is
delegated to), and ``registry.access.decide`` keeps what an anonymous reader may see. A path that is not
a handle (no ``/``, or under ``/api/``) keeps the JSON 404 of unknown paths.
"""

from __future__ import annotations

import logging
import uuid

from aiohttp import hdrs, web

from registry.access import ANONYMOUS, ReadQuery, decide
from registry.errors import IdresError, ResponseCode
from registry.locations import redirect_target
from registry.model import Handle, fold

from ..resolution.engine import Found
from ..resolution.upstream import VIA, parse_via
from . import caching, params
from .context import NODE, NodeParts
from .errors import error_response, fallback
from .pages import HTML_TYPE, SECURITY_HEADERS, Pages, handle_path
from .resolve import resolve_text
from .respond import status_for
from .signature_status import signature_status

log = logging.getLogger(__name__)
PAGES = web.AppKey("browser_pages", Pages)
HTML, JSON, REDIRECT = "html", "json", "redirect"
EXAMPLE = "88.101.5/SN-000123"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TITLES = {ResponseCode.HANDLE_NOT_FOUND: "Handle not found", ResponseCode.SERVER_NOT_RESP: "Not served here"}


def accepted(request: web.Request) -> dict[str, float]:
    """Media type → quality, from the Accept header."""
    found: dict[str, float] = {}
    for item in request.headers.get(hdrs.ACCEPT, "").split(","):
        media, *options = (part.strip() for part in item.split(";"))
        quality = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            found[media.lower()] = max(quality, found.get(media.lower(), 0.0))
    return found


def negotiate(request: web.Request) -> str:
    """HTML (the record page), JSON (the REST answer) or REDIRECT, as the module's docstring says."""
    if "noredirect" in request.query:
        return HTML
    accept = accepted(request)
    html = max((accept.get(t, 0.0) for t in _HTML_TYPES), default=0.0)
    json = accept.get("application/json", 0.0)
    if json > 0 and json >= html:
        return JSON
    if html > 0 and "*/*" not in accept:
        return HTML
    return REDIRECT


def accepts_html(request: web.Request) -> bool:
    accept = accepted(request)
    return any(accept.get(t, 0.0) > 0 for t in (*_HTML_TYPES, "text/*"))


def handle_of(request: web.Request) -> str | None:
    """The handle a browser-front path names, or None when the path is not a handle."""
    try:
        text = params.path_text(request, "/")
        prefix, slash, _ = text.partition("/")
        if not slash or fold(prefix) == "API":
            return None
        Handle.parse(text, max_length=request.app[NODE].settings.requests.max_handle_length)
    except IdresError:
        return None
    return text


def html_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers={hdrs.CONTENT_TYPE: HTML_TYPE, **SECURITY_HEADERS, **(headers or {})})


async def home(request: web.Request) -> web.StreamResponse:
    """``GET /``: the lookup form; ``/?hdl=H`` (what the form sends) goes on to ``/H``."""
    wanted = request.query.get("hdl", "").strip()
    if wanted:
        location = handle_path(wanted) + ("?noredirect" if "noredirect" in request.query else "")
        return web.Response(status=302, headers={hdrs.LOCATION: location})
    return html_response(request.app[PAGES].home_page(f"{request.scheme}://{request.host}/{EXAMPLE}"))


async def browse(request: web.Request) -> web.StreamResponse:
    """``GET /<handle>``: a redirect, a page or the REST answer; the JSON 404 when the path is no handle."""
    text = handle_of(request)
    if text is None:
        return await fallback(None)(request)
    mode = negotiate(request)
    if mode == JSON:
        return await resolve_text(request, text)
    try:
        return await _answer(request, request.app[NODE], text, mode)
    except IdresError as error:
        if mode == HTML or accepts_html(request):
            return _error_page(request, error, text)
        return error_response(request, error)
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("internal error %s on %s %s", incident, request.method, request.path)
        error = IdresError(f"internal server error (incident {incident} in the server log)")
        return _error_page(request, error, text)


async def _answer(request: web.Request, node: NodeParts, text: str, mode: str) -> web.StreamResponse:
    handle = Handle.parse(text, max_length=node.settings.requests.max_handle_length)
    found = await node.engine.answer(handle, parse_via(request.headers.get(VIA)))
    entry = found.record
    answer = decide(entry.stored.record if entry is not None else None, ReadQuery(), ANONYMOUS, text)
    if answer.error is not None:
        raise answer.error
    headers = caching.answer_headers(found, node.engine.clock())
    target = redirect_target(answer.values)
    if mode == REDIRECT and target is not None:
        return web.Response(status=302, headers={hdrs.LOCATION: target, **headers})
    if mode == REDIRECT and not accepts_html(request):
        return await resolve_text(request, text)
    if entry is None:
        return _not_found_page(request, text, found)
    status = await signature_status(node, entry, text, int(node.registrar.now()))
    return html_response(request.app[PAGES].record_page(text, answer.values, status, target), headers=headers)


def _not_found_page(request: web.Request, text: str, found: Found) -> web.Response:
    body = request.app[PAGES].error_page(404, ResponseCode.HANDLE_NOT_FOUND, "Handle not found",
                                         f"There is no handle {text}.", text)
    return html_response(body, 404, caching.answer_headers(found, request.app[NODE].engine.clock()))


def _error_page(request: web.Request, error: IdresError, text: str) -> web.Response:
    status = status_for(error, credentials_accepted=False)
    title = _TITLES.get(error.response_code, "The handle could not be resolved")
    body = request.app[PAGES].error_page(status, int(error.response_code), title, error.message or title, text)
    headers = {hdrs.RETRY_AFTER: "2"} if status == 503 else None
    return html_response(body, status, headers)


def add_routes(app: web.Application) -> None:
    """The home page and ``/<handle>``: added after every other route, so no other path pays for them."""
    node = app[NODE]
    app[PAGES] = Pages.load(f"idres node {node.settings.listen.advertised_address}", node.settings.node_name)
    for method in (hdrs.METH_GET, hdrs.METH_HEAD):
        app.router.add_route(method, "/", home)
    for method in (hdrs.METH_GET, hdrs.METH_HEAD):
        app.router.add_route(method, "/{handle:(?s:.+)}", browse)
