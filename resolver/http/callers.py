"""Who sent a request: HTTP Basic credentials, ``Authorization: Handle`` sessions, or a TLS client
certificate. Credentials count over HTTPS, and over plain HTTP only where the operator allows it."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from urllib.parse import unquote

from aiohttp import hdrs, web

from registry.errors import AuthenticationFailed, AuthenticationNeeded, InvalidHandle
from registry.model import ValueRef

from ..core.callers import Caller, Credentials
from .context import NodeParts
from .handle_auth import certificate_caller, session_caller


def parse_basic(header: str) -> Credentials:
    """``Basic base64(pct(index:handle) ":" secret)``; also the unencoded ``index:handle:secret``."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise AuthenticationFailed("send HTTP Basic (index:handle and a secret key) or Authorization: Handle (a session)")
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("the Basic credentials are not valid base64") from None
    user_raw, colon, secret = decoded.partition(b":")
    if not colon:
        raise AuthenticationFailed("the Basic credentials have no ':' between user and secret")
    try:
        user = unquote(user_raw.decode("utf-8"), errors="strict")
    except UnicodeDecodeError:
        raise AuthenticationFailed("the Basic user name is not UTF-8") from None
    if user.isdigit() and b":" in secret:  # easyhandle sends "300:prefix/suffix:secret" unencoded
        rest, _, secret = secret.partition(b":")
        user = f"{user}:{rest.decode('utf-8', 'replace')}"
    try:
        identity = ValueRef.parse(user)
    except InvalidHandle:
        raise AuthenticationFailed(f"user {user!r} is not an identity of the form index:prefix/suffix") from None
    return Credentials(identity, secret)


def credentials_accepted(request: web.Request, node: NodeParts) -> bool:
    return request.secure or node.settings.auth.allow_http_auth


async def caller_of(request: web.Request, node: NodeParts, *, required: bool, handle: str | None) -> Caller | None:
    """The authenticated caller, None when anonymous; AuthenticationNeeded when ``required`` and none."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is not None and not credentials_accepted(request, node):
        if required:
            tls_port = node.settings.listen.tls_port
            raise AuthenticationNeeded(
                "credentials are accepted only over HTTPS on this node" + (f" (port {tls_port})" if tls_port is not None else ""),
                handle=handle,
            )
        header = None  # ignored over plain HTTP, as Handle.Net does
    try:
        if header is None:
            caller = await certificate_caller(request, node) if request.secure else None
            if caller is None and required:
                raise AuthenticationNeeded(handle=handle)
            return caller
        if header[:7].lower() == "handle ":
            return await session_caller(request, node, header)
        return await node.rights.authenticate(dataclasses.replace(parse_basic(header), address=request.remote))
    except AuthenticationFailed as exc:
        exc.handle = exc.handle or handle
        raise
