"""``/api/sessions`` (handle-http-api.md §6.4): open a session and get its challenge, answer it, look at
it, end it. HTTPS only. The session lives in the store, so any worker process answers for it."""

from __future__ import annotations

import base64
import dataclasses

from aiohttp import hdrs, web

from registry.errors import AuthenticationFailed, AuthenticationNeeded, ProtocolError
from registry.pg.sessions import SessionRow

from ..core.sessions import identity_of
from .callers import credentials_accepted, parse_basic
from .context import NODE, NodeParts
from .errors import add_resource
from .handle_auth import answer_from, check_answer, parse_params
from .params import json_body
from .respond import json_response

THIS = "/api/sessions/this"


def _require_secure(request: web.Request, node: NodeParts) -> None:
    if not credentials_accepted(request, node):
        raise AuthenticationNeeded("sessions are available over HTTPS only")


def _body(session: SessionRow, **extra) -> dict:
    out = {"sessionId": session.id, "nonce": base64.b64encode(session.nonce).decode()}
    identity = identity_of(session)
    out.update(extra)
    if identity is not None:
        out.update({"authenticated": True, "id": str(identity)})
    elif "authenticated" not in out:
        out["authenticated"] = False
    return out


def _handle_params(request: web.Request) -> dict[str, str]:
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    return parse_params(header) if header[:7].lower() == "handle " else {}


async def _this(request: web.Request, node: NodeParts) -> SessionRow:
    session_id = _handle_params(request).get("sessionId")
    session = await node.sessions.get(session_id) if session_id else None
    if session is None:
        raise web.HTTPForbidden(reason="no such session: send Authorization: Handle sessionId=\"…\" of a live session")
    return session


async def open_session(request: web.Request) -> web.StreamResponse:
    """``POST /api/sessions``: a new session and its nonce; with Basic credentials, authenticated at once."""
    node = request.app[NODE]
    _require_secure(request, node)
    body = await json_body(request, 4096) if request.can_read_body else {}
    if _handle_params(request).get("sessionId") or isinstance(body, dict) and body.get("sessionId"):
        raise ProtocolError("this request names a session already: use /api/sessions/this")
    session = await node.sessions.open()
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    if header[:6].lower() == "basic ":
        creds = dataclasses.replace(parse_basic(header), address=request.remote)
        caller = await node.rights.authenticate(creds)
        await node.sessions.authenticated(session.id, caller.identity)
        session = dataclasses.replace(session, identity=str(caller.identity))
    response = json_response(request, _body(session), 201)
    response.headers[hdrs.LOCATION] = THIS
    return response


async def get_session(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    _require_secure(request, node)
    return json_response(request, _body(await _this(request, node)))


async def answer_session(request: web.Request) -> web.StreamResponse:
    """``PUT`` (or ``POST``) ``/api/sessions/this``: the answer to the challenge, in the header or a JSON body."""
    node = request.app[NODE]
    _require_secure(request, node)
    session = await _this(request, node)
    params = _handle_params(request)
    body = await json_body(request, 16384) if request.can_read_body else {}
    try:
        if "signature" in params:
            caller = await check_answer(node, session.id, session.nonce, answer_from(params, encoded_id=True), request.remote)
        elif isinstance(body, dict) and "signature" in body:
            caller = await check_answer(node, session.id, session.nonce, answer_from(body, encoded_id=False), request.remote)
        elif request.headers.get(hdrs.AUTHORIZATION, "")[:6].lower() == "basic ":
            caller = await node.rights.authenticate(
                dataclasses.replace(parse_basic(request.headers[hdrs.AUTHORIZATION]), address=request.remote))
            await node.sessions.authenticated(session.id, caller.identity)
        else:
            raise AuthenticationFailed("send the answer: id, type, cnonce, alg and signature")
    except AuthenticationFailed as exc:
        return json_response(request, {"sessionId": session.id, "authenticated": False, "error": exc.message}, 401)
    return json_response(request, _body(dataclasses.replace(session, identity=str(caller.identity))))


async def close_session(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    _require_secure(request, node)
    session = await _this(request, node)
    await node.sessions.close(session.id)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    add_resource(app, "/api/sessions", {"POST": open_session})
    add_resource(app, THIS, {"GET": get_session, "PUT": answer_session, "POST": answer_session, "DELETE": close_session})

