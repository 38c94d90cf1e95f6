"""``GET /api/handles?prefix=…``: the handles under a prefix, for those allowed to list them (spec §4.5)."""

from __future__ import annotations

from aiohttp import web

from registry.errors import InvalidHandle, ResponseCode
from registry.model import parse_prefix

from . import params
from .callers import caller_of
from .context import NODE, NodeParts
from .respond import json_response


async def list_prefix(request: web.Request, node: NodeParts, query) -> web.StreamResponse:
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
    return await list_prefix(request, node, request.query)
