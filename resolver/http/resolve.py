"""Resolution over HTTP: ``GET``, ``HEAD`` and ``POST`` of ``/api/handles/<handle>`` (spec §4.1).

The cache-hit path is at the top of ``get_handle``: no query string and no credentials, so the
pre-rendered public view of the cached record is written as it is, with its caching headers.
Everything else goes through ``_resolve``: the engine answers (locally, from the delegate, or stale),
``registry.access`` decides what the caller may read, and this module renders it — or refers the
client to the delegate when it asks for referrals.
"""

from __future__ import annotations

import orjson
from aiohttp import hdrs, web

from registry.access import ReadQuery, Reader, decide, needs_read_right, whole_public
from registry.delegation import SERV, SERV_PREFIX, SITE, SITE_PREFIX
from registry.errors import (
    InvalidHandle,
    PrefixNotHomed,
    ProtocolError,
    ResolutionLoop,
    ResponseCode,
    UpstreamInvalid,
    UpstreamUnavailable,
)
from registry.model import Handle, fold, prefix_record_handle
from registry.permissions import AdminPermission
from registry.value_json import value_to_json

from ..core.authority import Delegated
from ..core.callers import Caller
from ..resolution.engine import CachedRecord, Found, NegativeEntry
from ..resolution.upstream import VIA, parse_via
from . import caching, params
from .callers import caller_of
from .context import NODE, SIGNER, NodeParts
from .errors import error_response, guarded
from .listing import list_prefix
from .respond import JSON_TYPE, accepts_gzip, json_response
from .signatures import ACCEPT_SIGNATURE, wants_signature

ROUTE = "/api/handles/"
# the parameters of a POST, query and body merged (web.RequestKey where aiohttp has it)
_POST_QUERY = web.RequestKey("post_query", object) if hasattr(web, "RequestKey") else "idres.post_query"
_ROUTE_LEN = len(ROUTE)
JSON_VIEW = "http-json"  # the key of this module's rendering in a cache entry


def _public_view(entry: CachedRecord, text: str, node: NodeParts) -> caching.View:
    """``{"responseCode":1,"handle":…,"values":[…]}``, rendered once per spelling and kept in the cache entry."""
    view = entry.renderings.get(JSON_VIEW)
    if view is not None and view.text == text:
        return view
    stored = entry.stored
    code = b"1" if stored.has_public_values else b"200"
    body = b'{"responseCode":' + code + b',"handle":' + orjson.dumps(text) + b',"values":' + stored.public_json + b"}"
    entry.renderings[JSON_VIEW] = view = caching.View(text, body, entry)
    return view


def _view_response(request: web.Request, view: caching.View, entry: CachedRecord, node: NodeParts,
                   found: Found | None = None) -> web.Response:
    """The view, gzipped when asked and large enough, with its caching headers (of a hit, or of ``found``)."""
    gzip_min = node.settings.requests.gzip_min_bytes
    gzipped = len(view.body) >= gzip_min and hdrs.ACCEPT_ENCODING in request.headers and accepts_gzip(request)
    body = view.gzip() if gzipped else view.body
    sent = caching.view_headers(view, entry, node.engine.clock(), gzipped, found)
    if hdrs.IF_NONE_MATCH in request.headers and caching.not_modified(request, sent[hdrs.ETAG]):
        return caching.not_modified_response(sent)
    return web.Response(body=body, headers=sent)


def _not_found(request: web.Request, text: str, headers: dict[str, str]) -> web.Response:
    body = b'{"responseCode":100,"handle":' + orjson.dumps(text) + b"}"
    return web.Response(body=body, status=404, headers={hdrs.CONTENT_TYPE: JSON_TYPE, **headers})


async def get_handle(request: web.Request) -> web.StreamResponse:
    """GET and HEAD. The first block is the cache-hit path; everything else goes through ``_resolve``."""
    node = request.app[NODE]
    raw = request.raw_path
    headers = request.headers
    if "?" not in raw and hdrs.AUTHORIZATION not in headers and hdrs.ORIGIN not in headers and ACCEPT_SIGNATURE not in headers:
        text = raw[_ROUTE_LEN:]
        if "%" not in text:
            entry = node.engine.peek(fold(text))
            if entry is not None:
                if entry.__class__ is NegativeEntry:
                    entry.tally.not_found_hits += 1
                    return _not_found(request, text, caching.answer_headers(Found(entry, "hit"), node.engine.clock()))
                entry.tally.hits += 1
                view = entry.renderings.get(JSON_VIEW)  # type: ignore[union-attr]
                if view is None or view.text != text:
                    view = _public_view(entry, text, node)  # type: ignore[arg-type]
                return _view_response(request, view, entry, node)  # type: ignore[arg-type]
    return await _guarded_get(request)


async def _guarded_get(request: web.Request) -> web.StreamResponse:
    return await _signed_if_asked(request, await _guarded_resolve(request))


@guarded
async def _guarded_resolve(request: web.Request) -> web.StreamResponse:
    return await _resolve(request, request.app[NODE], request.query)


async def _signed_if_asked(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Sign the answer itself (RFC 9421) when the client asks with ?cert=true or Accept-Signature."""
    signer = request.app.get(SIGNER)
    if signer is not None and isinstance(response, web.Response) and wants_signature(request, request.get(_POST_QUERY)):
        signer.sign(request, response)
    return response


async def post_handle(request: web.Request) -> web.StreamResponse:
    """POST is GET with parameters: missing query parameters are taken from a JSON object body."""
    return await _signed_if_asked(request, await _guarded_post(request))


@guarded
async def _guarded_post(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    body = await params.json_body(request, node.settings.requests.max_body_bytes) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise ProtocolError("a POST body must be a JSON object of query parameters")
    query = request.query.copy()
    for key, value in body.items():
        if key not in query:
            for item in value if isinstance(value, list) else [value]:
                query.add(key, _param_text(item))
    request[_POST_QUERY] = query
    return await _resolve(request, node, query)


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def resolve_text(request: web.Request, text: str) -> web.StreamResponse:
    """The REST answer for the handle ``text``, as ``GET /api/handles/<text>`` gives it, for a route that
    names the handle in another way (the browser front)."""

    @guarded
    async def answer(request: web.Request) -> web.StreamResponse:
        return await _resolve(request, request.app[NODE], request.query, text)

    return await _signed_if_asked(request, await answer(request))


async def _resolve(request: web.Request, node: NodeParts, query, text: str | None = None) -> web.StreamResponse:
    text = params.path_text(request, ROUTE) if text is None else text
    if not text:
        if "prefix" in query:
            return await list_prefix(request, node, query)
        raise InvalidHandle("Empty handle invalid")
    handle = Handle.parse(text, max_length=node.settings.requests.max_handle_length)
    wanted = ReadQuery(tuple(params.indexes(query)), tuple(query.getall("type", [])),
                       params.flag(query, "publicOnly", False) if "publicOnly" in query else None)
    caller = await caller_of(request, node, required=False, handle=text)
    referral = await _referral(request, node, handle, text, query)
    if referral is not None:
        return referral
    try:
        found = await node.engine.answer(handle, parse_via(request.headers.get(VIA)))
    except PrefixNotHomed as exc:
        exc.handle = text  # echo the handle as the client spelled it
        raise
    except (UpstreamUnavailable, UpstreamInvalid, ResolutionLoop) as exc:
        exc.handle = text
        response = error_response(request, exc)
        response.headers[caching.CACHE_STATUS] = f"{caching.NAME}; fwd=uri-miss; fwd-status={response.status}"
        return response
    return await _render(request, node, query, found, handle, text, wanted, caller)


async def _render(request: web.Request, node: NodeParts, query, found: Found, handle: Handle, text: str,
                  wanted: ReadQuery, caller: Caller | None) -> web.StreamResponse:
    entry = found.record
    if entry is None:
        found.entry.tally.not_found += 1
        return _not_found(request, text, caching.answer_headers(found, node.engine.clock()))
    entry.tally.resolutions += 1
    reader = Reader(str(caller.identity) if caller is not None else None)
    plain = "pretty" not in query and "callback" not in query
    if plain and whole_public(wanted, reader):  # the answer is the record's public view, already rendered
        return _view_response(request, _public_view(entry, text, node), entry, node, found)
    answer = decide(entry.stored.record, wanted, await _with_rights(node, caller, handle, entry, wanted, reader), text)
    if answer.error is not None:
        raise answer.error
    if plain and answer.whole_public:
        return _view_response(request, _public_view(entry, text, node), entry, node, found)
    body = {"responseCode": answer.code, "handle": text, "values": [value_to_json(v) for v in answer.values]}
    response = json_response(request, body)
    response.headers.update(caching.answer_headers(found, node.engine.clock()))
    return response


async def _with_rights(node: NodeParts, caller: Caller | None, handle: Handle, entry: CachedRecord,
                       wanted: ReadQuery, reader: Reader) -> Reader:
    """The reader with its READ_VALUE right looked up, where the answer depends on it."""
    record = entry.stored.record
    if caller is None or not needs_read_right(record, wanted, reader):
        return reader
    return Reader(reader.identity, await node.registrar.may(caller, AdminPermission.READ_VALUE, handle, record))


async def _referral(request: web.Request, node: NodeParts, handle: Handle, text: str, query) -> web.Response | None:
    """HTTP 300 with responseCode 303 and the delegation's values, when the client is to go there itself:
    ``doNotRefer=false``, or the node refers (IDRES_REFER) and the client did not say ``doNotRefer``."""
    refer = not params.flag(query, "doNotRefer", False) if "doNotRefer" in query else node.settings.resolution.refer
    delegation = node.engine.authority.snapshot.answer_for(handle) if refer else None
    if not isinstance(delegation, Delegated):
        return None
    record = await node.engine.record_of(prefix_record_handle(delegation.prefix))
    derived = fold(delegation.prefix) != fold(handle.suffix if handle.is_prefix_record else handle.prefix)
    wanted = {SITE_PREFIX, SERV_PREFIX} if derived else {SITE, SERV}
    values = [v for v in record.values if v.type_key in wanted] if record is not None else []
    body = {"responseCode": ResponseCode.PREFIX_REFERRAL, "handle": text, "values": [value_to_json(v) for v in values]}
    response = json_response(request, body, 300)
    response.headers[caching.CACHE_STATUS] = f'{caching.NAME}; fwd=bypass; detail="referral to {delegation.describe()}"'
    return response
