"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database reachable, cache coherent)."""

from __future__ import annotations

from aiohttp import web

from .context import NODE
from .errors import add_resource
from .respond import json_response


async def healthz(request: web.Request) -> web.StreamResponse:
    return json_response(request, {"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    body = await request.app[NODE].readiness()
    return json_response(request, body, 200 if body["status"] == "ready" else 503)


def add_routes(app: web.Application) -> None:
    add_resource(app, "/healthz", {"GET": healthz})
    add_resource(app, "/readyz", {"GET": readyz})
