"""``Authorization: Handle …`` (handle-http-api.md §6.3) and TLS client certificates (§6.2): who a request
comes from when it proves a key rather than sending a password."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Mapping
from urllib.parse import unquote

from aiohttp import web

from registry.errors import AuthenticationFailed, InvalidHandle
from registry.model import ValueRef

from ..core.callers import Caller
from ..core.keyauth import Answer, certificate_identity, certificate_index, verify_answer
from ..core.sessions import identity_of
from .context import NodeParts

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')


def parse_params(header: str) -> dict[str, str]:
    """The auth-params of ``Handle k="v", k=v, …`` (RFC 7235)."""
    _, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        quoted, token = match.group(2), match.group(3)
        params[match.group(1)] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token
    return params


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise AuthenticationFailed(f"the {what} of the answer is missing")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed(f"the {what} of the answer is not base64") from None


def _number(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AuthenticationFailed(f"{value!r} is not a number") from None


def answer_from(fields: Mapping[str, Any], *, encoded_id: bool) -> Answer:
    """The answer in a header's params (``id`` percent-encoded) or a JSON body (``encoded_id`` False)."""
    if str(fields.get("version", "0")) != "0":
        raise AuthenticationFailed("only version 0 of Handle authentication is supported")
    raw_id = fields.get("id")
    if not isinstance(raw_id, str):
        raise AuthenticationFailed("the answer names no identity (id=\"index:handle\")")
    try:
        identity = ValueRef.parse(unquote(raw_id) if encoded_id else raw_id)
    except InvalidHandle:
        raise AuthenticationFailed(f"id {raw_id!r} is not of the form index:prefix/suffix") from None
    salt = fields.get("salt")
    return Answer(identity, str(fields.get("type", "HS_PUBKEY")), str(fields.get("alg", "SHA256")),
                  _b64(fields.get("cnonce"), "cnonce"), _b64(fields.get("signature"), "signature"),
                  _b64(salt, "salt") if salt is not None else None, _number(fields.get("iterations")),
                  _number(fields.get("length")))


async def check_answer(node: NodeParts, session_id: str, nonce: bytes, answer: Answer, address: str | None) -> Caller:
    """The caller proven by ``answer`` to the session's challenge; the session is authenticated as it."""
    limits = node.rights.limits
    if limits is not None:
        await limits.check_login(answer.identity, address)
    record = await node.rights.record(answer.identity.handle)
    index = verify_answer(record, answer, nonce)
    if index is None:
        await node.rights.failed(answer.identity, address)
    identity = ValueRef(index, answer.identity.handle)
    await node.sessions.authenticated(session_id, identity)
    return node.rights.caller(identity)


async def session_caller(request: web.Request, node: NodeParts, header: str) -> Caller | None:
    """The caller of ``Authorization: Handle …``: its session's identity, or the answer it carries."""
    params = parse_params(header)
    session_id = params.get("sessionId")
    if session_id is None:
        if params.get("clientCert", "").lower() == "true":
            return await certificate_caller(request, node, required=True)
        raise AuthenticationFailed("Authorization: Handle needs a sessionId: start a session with POST /api/sessions")
    session = await node.sessions.get(session_id)
    if session is None:
        raise AuthenticationFailed("the session is unknown or has expired: start a new one with POST /api/sessions")
    if "signature" in params:
        return await check_answer(node, session_id, session.nonce, answer_from(params, encoded_id=True), request.remote)
    identity = identity_of(session)
    if identity is None:
        raise AuthenticationFailed("the session is not authenticated: answer its challenge first (PUT /api/sessions/this)")
    return node.rights.caller(identity)


def peer_certificate(request: web.Request) -> bytes | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


async def certificate_caller(request: web.Request, node: NodeParts, *, required: bool = False) -> Caller | None:
    """The identity a TLS client certificate proves (its key is the identity's HS_PUBKEY); None without one."""
    der = peer_certificate(request)
    if der is None:
        if required:
            raise AuthenticationFailed("no client certificate was presented at the TLS handshake")
        return None
    found = certificate_identity(der)
    if found is None:
        raise AuthenticationFailed("the client certificate names no identity (subject UID or CN index:prefix/suffix)")
    identity, key = found
    index = certificate_index(await node.rights.record(identity.handle), identity, key)
    if index is None:
        await node.rights.failed(identity, request.remote)
    return node.rights.caller(ValueRef(index, identity.handle))
