"""HTTP handlers, thin: parse, call the engine or registrar, render. Errors become JSON (errors.py)."""

from __future__ import annotations

from aiohttp import web

from . import handles, health, prefixes
from .errors import add_catch_all


def add_routes(app: web.Application) -> None:
    handles.add_routes(app)
    prefixes.add_routes(app)
    health.add_routes(app)
    add_catch_all(app)


__all__ = ["add_routes"]
