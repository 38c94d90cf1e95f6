"""The aiohttp application of one serving process: its routes, over the node's parts."""

from __future__ import annotations

from aiohttp import web

from ..config import idres_version
from . import batch, browser, delegations, handles, health, metrics, openapi, prefixes, sessions, stats, sync
from .context import NODE, SIGNER, NodeParts
from .errors import add_catch_all
from .params import BODY_TIMEOUT
from .signatures import ResponseSigner


def create_app(node: NodeParts) -> web.Application:
    """The application serving ``node``; the node's lifecycle is its owner's (``serving``)."""
    settings = node.settings
    app = web.Application(client_max_size=settings.requests.max_body_bytes)
    app[NODE] = node
    app[BODY_TIMEOUT] = settings.front_door.body_timeout
    if settings.signing.enabled:
        app[SIGNER] = ResponseSigner(node.keyring, settings.signing.http_signature_lifetime)
    handles.add_routes(app)
    prefixes.add_routes(app)
    delegations.add_routes(app)
    batch.add_routes(app)
    sessions.add_routes(app)
    health.add_routes(app)
    metrics.add_routes(app)
    stats.add_routes(app)
    openapi.add_routes(app, idres_version())
    sync.add_routes(app)
    browser.add_routes(app)
    add_catch_all(app)
    return app
