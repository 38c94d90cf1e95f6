"""``/api/handles``: resolve, create/replace/mint, add and remove values, delete, list (spec §4.1–§4.5).

The cache-hit path of GET is at the top of ``get_handle``: no query string and no credentials, so the
pre-rendered public view of the cached record is written as it is.
"""

from __future__ import annotations

import orjson
from aiohttp import hdrs, web

from registry.access import ReadQuery, Reader, decide, needs_read_right, whole_public
from registry.errors import InvalidHandle, PrefixNotHomed, ProtocolError, ResponseCode
from registry.model import Handle, fold, parse_prefix
from registry.permissions import AdminPermission
from registry.value_json import parse_values_body, value_to_json

from ..core.callers import Caller
from ..resolution.engine import NOT_FOUND, CachedRecord
from . import params
from .callers import caller_of
from .context import NODE, SIGNER, NodeParts
from .errors import add_resource, guarded
from .respond import JSON_HEADERS, accepts_gzip, bytes_response, compress, json_response
from .signatures import ACCEPT_SIGNATURE, wants_signature

ROUTE = "/api/handles/"
# the parameters of a POST, query and body merged (web.RequestKey where aiohttp has it)
_POST_QUERY = web.RequestKey("post_query", object) if hasattr(web, "RequestKey") else "idres.post_query"
_ROUTE_LEN = len(ROUTE)
JSON_VIEW = "http-json"  # the key of this module's rendering in a cache entry


class _View:
    """A record's public answer as one spelling of its handle asked for it, and its gzip form once needed."""

    __slots__ = ("text", "body", "gzipped")

    def __init__(self, text: str, body: bytes) -> None:
        self.text, self.body = text, body
        self.gzipped: bytes | None = None


def _public_view(entry: CachedRecord, text: str) -> _View:
    """``{"responseCode":1,"handle":…,"values":[…]}``, rendered once per spelling and kept in the cache entry."""
    view = entry.renderings.get(JSON_VIEW)
    if view is not None and view.text == text:
        return view
    stored = entry.stored
    code = b"1" if stored.has_public_values else b"200"
    body = b'{"responseCode":' + code + b',"handle":' + orjson.dumps(text) + b',"values":' + stored.public_json + b"}"
    entry.renderings[JSON_VIEW] = view = _View(text, body)
    return view


def _view_response(request: web.Request, view: _View, gzip_min: int) -> web.Response:
    if len(view.body) >= gzip_min and hdrs.ACCEPT_ENCODING in request.headers and accepts_gzip(request):
        if view.gzipped is None:
            view.gzipped = compress(view.body)
        return bytes_response(request, view.body, 200, gzip_min, view.gzipped)
    return web.Response(body=view.body, headers=JSON_HEADERS)


def _not_found(text: str) -> bytes:
    return b'{"responseCode":100,"handle":' + orjson.dumps(text) + b"}"


async def get_handle(request: web.Request) -> web.StreamResponse:
    """GET and HEAD. The first block is the cache-hit path; everything else goes through ``_resolve``."""
    node = request.app[NODE]
    raw = request.raw_path
    headers = request.headers
    if "?" not in raw and hdrs.AUTHORIZATION not in headers and hdrs.ORIGIN not in headers and ACCEPT_SIGNATURE not in headers:
        text = raw[_ROUTE_LEN:]
        if "%" not in text:
            entry = node.engine.lookup(fold(text))
            if entry is not None:
                if entry is NOT_FOUND:
                    return bytes_response(request, _not_found(text), 404)
                view = entry.renderings.get(JSON_VIEW)  # type: ignore[union-attr]
                if view is None or view.text != text:
                    view = _public_view(entry, text)  # type: ignore[arg-type]
                return _view_response(request, view, node.settings.requests.gzip_min_bytes)
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


async def _resolve(request: web.Request, node: NodeParts, query) -> web.StreamResponse:
    text = params.path_text(request, ROUTE)
    if not text:
        if "prefix" in query:
            return await _list(request, node, query)
        raise InvalidHandle("Empty handle invalid")
    handle = Handle.parse(text, max_length=node.settings.requests.max_handle_length)
    wanted = ReadQuery(tuple(params.indexes(query)), tuple(query.getall("type", [])),
                       params.flag(query, "publicOnly", False) if "publicOnly" in query else None)
    caller = await caller_of(request, node, required=False, handle=text)
    try:
        entry = await node.engine.resolve(handle)
    except PrefixNotHomed as exc:
        exc.handle = text  # echo the handle as the client spelled it
        raise
    if entry is None:
        return json_response(request, {"responseCode": ResponseCode.HANDLE_NOT_FOUND, "handle": text}, 404)
    reader = Reader(str(caller.identity) if caller is not None else None)
    plain = "pretty" not in query and "callback" not in query
    if plain and whole_public(wanted, reader):  # the answer is the record's public view, already rendered
        return _view_response(request, _public_view(entry, text), node.settings.requests.gzip_min_bytes)
    answer = decide(entry.stored.record, wanted, await _with_rights(node, caller, handle, entry, wanted, reader), text)
    if answer.error is not None:
        raise answer.error
    if plain and answer.whole_public:
        return _view_response(request, _public_view(entry, text), node.settings.requests.gzip_min_bytes)
    body = {"responseCode": answer.code, "handle": text, "values": [value_to_json(v) for v in answer.values]}
    return json_response(request, body)


async def _with_rights(node: NodeParts, caller: Caller | None, handle: Handle, entry: CachedRecord,
                       wanted: ReadQuery, reader: Reader) -> Reader:
    """The reader with its READ_VALUE right looked up, where the answer depends on it."""
    record = entry.stored.record
    if caller is None or not needs_read_right(record, wanted, reader):
        return reader
    return Reader(reader.identity, await node.registrar.may(caller, AdminPermission.READ_VALUE, handle, record))


async def _list(request: web.Request, node: NodeParts, query) -> web.StreamResponse:
    sent = query["prefix"]
    prefix = parse_prefix(sent)
    page, page_size = params.page_params(query)
    caller = await caller_of(request, node, required=True, handle=f"0.NA/{prefix}")
    total, handles = await node.registrar.list_handles(prefix, caller, page=page, page_size=page_size)
    body: dict = {"responseCode": ResponseCode.SUCCESS, "prefix": sent, "totalCount": str(total)}
    if page is not None and page_size is not None and page >= 0 and page_size >= 0:
        body["page"] = page
        body["pageSize"] = page_size
    body["handles"] = handles
    return json_response(request, body)


async def list_handles(request: web.Request) -> web.StreamResponse:
    """``GET /api/handles?prefix=…``."""
    node = request.app[NODE]
    if "prefix" not in request.query:
        raise InvalidHandle("Empty handle invalid: give a handle in the path or ?prefix= to list")
    return await _list(request, node, request.query)


async def put_handle(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    query = request.query
    text = params.path_text(request, ROUTE)
    mint = params.java_flag(query, "mintNewSuffix", False)
    overwrite = params.java_flag(query, "overwrite", True)
    handle = Handle.parse(text, max_length=node.settings.requests.max_handle_length, allow_empty_suffix=mint)
    index_params = query.getall("index", [])
    body = await params.json_body(request, node.settings.requests.max_body_bytes)
    values, named = parse_values_body(body)
    if named is not None and fold(named) != handle.key:
        raise ProtocolError("Mismatched handle in PUT request", handle=text)
    caller = await caller_of(request, node, required=True, handle=text)
    await node.limits.check_writes(caller, request.remote)  # type: ignore[arg-type]
    registrar = node.registrar
    if index_params:
        wanted = None if any(i.lower() == "various" for i in index_params) else [params.integer(i) for i in index_params]
        result = await registrar.add_values(handle, values, caller, indexes=wanted, overwrite=overwrite)
    elif mint:
        result = await registrar.mint(handle, values, caller)
    else:
        result = await registrar.put(handle, values, caller, overwrite=overwrite)
    return json_response(request, {"responseCode": ResponseCode.SUCCESS, "handle": result.handle}, 201 if result.created else 200)


async def delete_handle(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    text = params.path_text(request, ROUTE)
    handle = Handle.parse(text, max_length=node.settings.requests.max_handle_length)
    index_params = request.query.getall("index", [])
    if any(i.lower() == "various" for i in index_params):
        raise ProtocolError("index=various is accepted only by PUT", handle=text)
    indexes = [params.integer(i) for i in index_params]
    caller = await caller_of(request, node, required=True, handle=text)
    await node.limits.check_writes(caller, request.remote)  # type: ignore[arg-type]
    if indexes:
        await node.registrar.remove_values(handle, indexes, caller)
    else:
        await node.registrar.delete(handle, caller)
    return json_response(request, {"responseCode": ResponseCode.SUCCESS, "handle": text})


def add_routes(app: web.Application) -> None:
    add_resource(app, "/api/handles", {"GET": list_handles, "HEAD": list_handles})
    add_resource(
        app,
        ROUTE + "{handle:.*}",
        {"GET": get_handle, "HEAD": get_handle, "POST": post_handle, "PUT": put_handle, "DELETE": delete_handle},
        raw=("GET", "HEAD", "POST"),
    )
