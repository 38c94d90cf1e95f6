"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /api/openapi.json``.

Every route the application registers is described here (``tests/resolver/http/test_openapi.py`` fails
for a route that is not), with the parameters its handler reads, the bodies of ``schemas.py``, and the
HTTP statuses it answers with, each with the Handle responseCodes it carries. The document is built
once per application and served as bytes.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic.json_schema import models_json_schema

from registry.errors import ResponseCode

from . import openapi_paths as ops
from .errors import add_resource
from .schemas import MODELS

ROUTE = "/api/openapi.json"
DOCUMENT = web.AppKey("openapi_document", bytes)

# responseCode → (meaning, the HTTP statuses it comes with); handle-http-api.md §5, resolution.md
MEANINGS: dict[ResponseCode, tuple[str, str]] = {
    ResponseCode.SUCCESS: ("success", "200, 201 (something new was created)"),
    ResponseCode.ERROR: ("unexpected server error; or an answer relayed from another node that idres cannot use", "500, 502"),
    ResponseCode.SERVER_TOO_BUSY: ("the database is unavailable, or a write kept conflicting; try again", "503"),
    ResponseCode.PROTOCOL_ERROR: ("malformed request: bad JSON, parameters or media type; unknown path or method", "400, 404, 405, 413, 501"),
    ResponseCode.OPERATION_NOT_SUPPORTED: ("not offered by this node (listing handles switched off)", "501"),
    ResponseCode.RECURSION_COUNT_TOO_HIGH: ("resolution loop, or more nodes than IDRES_MAX_HOPS", "508"),
    ResponseCode.SERVER_BACKUP: ("the node is read-only", "503"),
    ResponseCode.HANDLE_NOT_FOUND: ("no such handle", "404"),
    ResponseCode.HANDLE_ALREADY_EXISTS: ("the handle exists (overwrite=false)", "409"),
    ResponseCode.INVALID_HANDLE: ("the handle or prefix is not valid, or empty", "400"),
    ResponseCode.VALUES_NOT_FOUND: ("resolution: the handle exists, no value matches (HTTP 200); removal: no value at an index", "200, 400"),
    ResponseCode.VALUE_ALREADY_EXISTS: ("an index is taken (overwrite=false), or given twice", "409"),
    ResponseCode.INVALID_VALUE: ("a value is not valid", "400"),
    ResponseCode.OUT_OF_DATE_SITE_INFO: ("the site information is out of date", "500"),
    ResponseCode.SERVER_NOT_RESP: ("the prefix is not served here (400); no node serving a delegated prefix answered (504)", "400, 504"),
    ResponseCode.SERVICE_REFERRAL: ("referral to another service", "300"),
    ResponseCode.PREFIX_REFERRAL: ("referral to the node serving the prefix", "300"),
    ResponseCode.INVALID_ADMIN: ("the identity is not an administrator", "403"),
    ResponseCode.INSUFFICIENT_PERMISSIONS: ("the identity lacks the permission", "403"),
    ResponseCode.AUTHENTICATION_NEEDED: ("credentials needed, or refused (401 over HTTPS, 403 over HTTP)", "401, 403"),
    ResponseCode.AUTHENTICATION_FAILED: ("authentication failed", "403"),
    ResponseCode.INVALID_CREDENTIAL: ("the credential is not valid", "403"),
}

DESCRIPTION = """\
The Handle.Net 9 HTTP JSON REST API (`/api/handles`, `/api/prefixes`, `/api/site`) as idres serves it,
with idres's own additions: delegations, health, this document, and the browser front (`/` and
`/{handle}`).

Every `/api` answer is JSON with a `responseCode`; errors also carry a `message` and the handle asked
for. Credentials (HTTP Basic: `index:handle` of an HS_SECKEY, percent-encoded, and its secret) count
only over HTTPS, unless the node runs with `IDRES_ALLOW_HTTP_AUTH`. `OPTIONS` on any path is a CORS
preflight. A path no route serves gets 404, a method a path does not serve 405, an unknown method 501,
all with responseCode 4.

| responseCode | name | meaning | HTTP |
|---|---|---|---|
""" + "\n".join(f"| {int(code)} | {code.name} | {meaning} | {http} |" for code, (meaning, http) in MEANINGS.items())


def response_code_schema() -> dict[str, Any]:
    return {
        "type": "integer",
        "description": "The Handle responseCode (handle-wire.md §3.1).",
        "oneOf": [{"const": int(code), "title": code.name, "description": f"{meaning} (HTTP {http})"}
                  for code, (meaning, http) in MEANINGS.items()],
    }


def _without_null_defaults(node: Any) -> Any:
    """pydantic writes ``default: null`` for keys an answer leaves out; the document does not say so."""
    if isinstance(node, dict):
        return {k: _without_null_defaults(v) for k, v in node.items() if not (k == "default" and v is None)}
    if isinstance(node, list):
        return [_without_null_defaults(v) for v in node]
    return node


def components() -> dict[str, Any]:
    _, schemas = models_json_schema([(model, "validation") for model in MODELS], ref_template=ops.REF)
    found = _without_null_defaults(schemas["$defs"])
    found["ErrorBody"]["properties"]["responseCode"] = {"$ref": ops.REF.format(model="ResponseCode")}
    found["ResponseCode"] = response_code_schema()
    return {
        "schemas": found,
        "securitySchemes": {"basicAuth": {
            "type": "http", "scheme": "basic",
            "description": "user: index:handle of an HS_SECKEY, percent-encoded (300%3A88.101.5/ADMIN); password: its secret",
        }},
    }


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "idres HTTP API", "version": version, "description": DESCRIPTION,
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "paths": ops.paths(),
        "components": components(),
    }


async def get_document(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[DOCUMENT], content_type="application/json", charset="utf-8")


def add_routes(app: web.Application, version: str) -> None:
    app[DOCUMENT] = orjson.dumps(document(version))
    add_resource(app, ROUTE, {"GET": get_document})
