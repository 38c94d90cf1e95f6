"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database reachable, cache coherent)."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from registry.errors import IdresError

from ..node import NODE
from .errors import add_resource
from .respond import json_response

READY_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.StreamResponse:
    return json_response(request, {"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    try:
        database = await asyncio.wait_for(node.store.ping(), READY_TIMEOUT)
    except (IdresError, asyncio.TimeoutError):
        database = False
    follower = node.follower is None or node.follower.connected
    ready = database and follower
    body = {
        "status": "ready" if ready else "unavailable",
        "pid": os.getpid(),
        "database": database,
        "changeFollower": follower,
        "homedPrefixes": len(node.engine.prefixes),
        "cache": node.engine.stats(),
    }
    return json_response(request, body, 200 if ready else 503)


def add_routes(app: web.Application) -> None:
    add_resource(app, "/healthz", {"GET": healthz})
    add_resource(app, "/readyz", {"GET": readyz})
