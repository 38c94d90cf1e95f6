"""``/api/handles``: create/replace/mint, add and remove values, delete, list (spec §4.2–§4.5); the
routes of resolution (GET, HEAD, POST), whose handlers are in resolve.py."""

from __future__ import annotations

from aiohttp import web

from registry.errors import ProtocolError, ResponseCode
from registry.model import Handle, fold
from registry.value_json import parse_values_body

from . import params
from .callers import caller_of
from .context import NODE
from .errors import ANY_TEXT, add_resource
from .listing import list_handles
from .resolve import ROUTE, get_handle, post_handle
from .respond import json_response


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
        ROUTE + "{handle:" + ANY_TEXT + "}",
        {"GET": get_handle, "HEAD": get_handle, "POST": post_handle, "PUT": put_handle, "DELETE": delete_handle},
        raw=("GET", "HEAD", "POST"),
    )
