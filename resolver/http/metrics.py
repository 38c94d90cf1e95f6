"""``GET /metrics``: the node's metrics in Prometheus's text format, all worker processes added up."""

from __future__ import annotations

from aiohttp import web

from registry.errors import OperationNotSupported

from .context import NODE
from .errors import add_resource

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def metrics(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    if node.metrics is None:
        raise OperationNotSupported("metrics are switched off on this node (IDRES_METRICS)")
    return web.Response(body=node.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    add_resource(app, "/metrics", {"GET": metrics})
