"""``/api/delegations``: the REST equivalent of ``idres prefix delegate|undelegate``, for server admins.

``POST /api/delegations/<prefix>`` with ``{"to": [URL, …]}`` (each node's ``/api/site`` is fetched) or
``{"sites": [site, …]}`` (HS_SITE in the JSON of spec §3.4); ``DELETE /api/delegations/<prefix>``;
``GET /api/delegations`` lists the delegations this node keeps.
"""

from __future__ import annotations

import aiohttp
import orjson
from aiohttp import web

from registry.delegation import endpoints
from registry.locations import usable_url
from registry.errors import IdresError, InvalidHandle, ProtocolError, ResponseCode, UpstreamUnavailable
from registry.model import parse_prefix
from registry.values import SiteInfo

from . import params
from .callers import caller_of
from .context import NODE
from .errors import SOME_TEXT, add_resource
from .respond import json_response

ROUTE = "/api/delegations/"
SITE_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10)


def _prefix_of(request: web.Request) -> tuple[str, str]:
    sent = params.path_text(request, ROUTE)
    if not sent:
        raise InvalidHandle("Empty prefix invalid: give the prefix in the path, /api/delegations/<prefix>")
    return sent, parse_prefix(sent)


async def _site_of(url: str) -> SiteInfo:
    try:
        async with aiohttp.ClientSession(timeout=SITE_FETCH_TIMEOUT) as session:
            async with session.get(url.rstrip("/") + "/api/site", ssl=False) as resp:
                body = orjson.loads(await resp.read())
        return SiteInfo.from_json(body["site"])
    except (aiohttp.ClientError, OSError, TimeoutError, orjson.JSONDecodeError, KeyError, TypeError, IdresError) as exc:
        raise UpstreamUnavailable(f"{url} did not answer /api/site with a site idres can read: {exc}") from None


async def _sites(body: object) -> list[SiteInfo]:
    if not isinstance(body, dict) or not isinstance(body.get("to", body.get("sites")), list):
        raise ProtocolError('the body must be {"to": [URL, …]} or {"sites": [site, …]}')
    if "to" in body:
        for url in body["to"]:
            if not isinstance(url, str) or usable_url(url) is None:
                raise ProtocolError(f'"to" lists {url!r}, which is not an http:// or https:// URL of a node')
        return [await _site_of(url) for url in body["to"]]
    return [SiteInfo.from_json(site) for site in body["sites"]]


async def delegate(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    sent, prefix = _prefix_of(request)
    caller = await caller_of(request, node, required=True, handle=sent)
    body = await params.json_body(request, node.settings.requests.max_body_bytes)
    await node.registrar.delegate(prefix, caller, lambda: _sites(body))
    return json_response(request, {"responseCode": ResponseCode.SUCCESS, "handle": sent})


async def undelegate(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    sent, prefix = _prefix_of(request)
    caller = await caller_of(request, node, required=True, handle=sent)
    await node.registrar.undelegate(prefix, caller)
    return json_response(request, {"responseCode": ResponseCode.SUCCESS, "handle": sent})


async def list_delegations(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    caller = await caller_of(request, node, required=True, handle=None)
    await node.registrar.homed(caller)  # server admins only, as /api/prefixes
    delegations = sorted(node.engine.authority.snapshot.delegated(), key=lambda d: d.prefix)
    listed = [{"prefix": d.prefix, "servers": [u for s in d.sites for u in endpoints(s)],
               "derivedPrefixes": [u for s in d.prefix_sites for u in endpoints(s)]} for d in delegations]
    return json_response(request, {"responseCode": ResponseCode.SUCCESS, "totalCount": str(len(listed)), "delegations": listed})


def add_routes(app: web.Application) -> None:
    add_resource(app, "/api/delegations", {"GET": list_delegations})
    add_resource(app, ROUTE + "{prefix:" + SOME_TEXT + "}", {"POST": delegate, "DELETE": undelegate})
