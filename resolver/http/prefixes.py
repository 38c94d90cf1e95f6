"""``/api/prefixes`` (list, home, unhome; server admins only) and ``/api/site`` (spec §4.6, §4.7)."""

from __future__ import annotations

from aiohttp import web

from registry.errors import InvalidHandle, ResponseCode
from registry.model import parse_prefix

from ..keys.publication import prefix_record
from . import params
from .callers import caller_of
from .context import NODE
from .errors import SOME_TEXT, add_resource
from .respond import json_response

ROUTE = "/api/prefixes/"


def _prefix_of(request: web.Request) -> tuple[str, str]:
    """(as sent, validated prefix) from the path or ``?prefix=``."""
    sent = params.path_text(request, ROUTE) or request.query.get("prefix", "")
    if not sent:
        raise InvalidHandle("Empty prefix invalid: give the prefix in the path or as ?prefix=")
    return sent, parse_prefix(sent)


async def list_prefixes(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    caller = await caller_of(request, node, required=True, handle=None)
    prefixes = [f"0.NA/{p}" for p in await node.registrar.homed(caller)]
    page, size = params.page_params(request.query)
    body: dict = {"responseCode": ResponseCode.SUCCESS, "totalCount": str(len(prefixes))}
    if page is not None and size is not None and page >= 0 and size >= 0:
        body.update(page=page, pageSize=size)
        prefixes = prefixes[page * size : page * size + size]
    body["prefixes"] = prefixes
    return json_response(request, body)


async def home_prefix(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    sent, prefix = _prefix_of(request)
    caller = await caller_of(request, node, required=True, handle=sent)
    record = prefix_record(node.current_site(), node.keyring, prefix, node.registrar.now(), node.settings.signing.signature_lifetime)
    await node.registrar.home(prefix, caller, record)
    return json_response(request, {"responseCode": ResponseCode.SUCCESS, "handle": sent})


async def unhome_prefix(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    sent, prefix = _prefix_of(request)
    caller = await caller_of(request, node, required=True, handle=sent)
    await node.registrar.unhome(prefix, caller)
    return json_response(request, {"responseCode": ResponseCode.SUCCESS, "handle": sent})


async def get_site(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    return json_response(request, {"responseCode": ResponseCode.SUCCESS, "site": node.current_site().to_json()})


def add_routes(app: web.Application) -> None:
    add_resource(app, "/api/prefixes", {"GET": list_prefixes, "POST": home_prefix})
    add_resource(app, "/api/prefixes/", {"GET": list_prefixes})
    add_resource(app, ROUTE + "{prefix:" + SOME_TEXT + "}", {"POST": home_prefix, "DELETE": unhome_prefix})
    add_resource(app, "/api/site", {"GET": get_site})
    add_resource(app, "/api/site/", {"GET": get_site})
