"""Who sent a request: credentials count over HTTPS, and over plain HTTP only where the operator allows it."""

from __future__ import annotations

from aiohttp import hdrs, web

from registry.errors import AuthenticationFailed, AuthenticationNeeded

from ..auth import Caller, parse_basic
from ..node import Node


def credentials_accepted(request: web.Request, node: Node) -> bool:
    return request.secure or node.settings.allow_http_auth


async def caller_of(request: web.Request, node: Node, *, required: bool, handle: str | None) -> Caller | None:
    """The authenticated caller, None when anonymous; AuthenticationNeeded when ``required`` and none."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is not None and not credentials_accepted(request, node):
        if required:
            raise AuthenticationNeeded(
                "credentials are accepted only over HTTPS on this node"
                + (f" (port {node.settings.tls_port})" if node.settings.tls_port is not None else ""),
                handle=handle,
            )
        header = None  # ignored over plain HTTP, as Handle.Net does
    if header is None:
        if required:
            raise AuthenticationNeeded(handle=handle)
        return None
    try:
        return await node.authority.authenticate(parse_basic(header))
    except AuthenticationFailed as exc:
        exc.handle = exc.handle or handle
        raise
