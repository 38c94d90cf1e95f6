"""HTTP handlers, thin: parse, call the engine or registrar, render. One error middleware."""

from __future__ import annotations

from aiohttp import web

from . import handles, health, prefixes
from .errors import api_middleware


def add_routes(app: web.Application) -> None:
    handles.add_routes(app)
    prefixes.add_routes(app)
    health.add_routes(app)


__all__ = ["add_routes", "api_middleware"]
