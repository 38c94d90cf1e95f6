"""The OpenAPI document: valid OpenAPI 3.1, served at /api/openapi.json, and describing every route the
application registers (a route added without its description fails here)."""

from __future__ import annotations

import re

from aiohttp import hdrs, web
from openapi_spec_validator import validate

from resolver.config import idres_version as version
from resolver.http.openapi import ROUTE, document

_VARIABLE = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def registered(app: web.Application) -> set[tuple[str, str]]:
    """(path template, method) of every route the application serves for a named method; the catch-all
    answers of unknown methods and paths (METH_ANY) are described in the document's introduction."""
    found = set()
    for resource in app.router.resources():
        path = _VARIABLE.sub(r"{\1}", resource.canonical)
        found |= {(path, route.method.lower()) for route in resource if route.method != hdrs.METH_ANY}
    return found


def documented(doc: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item}


def undocumented(app: web.Application, doc: dict) -> set[tuple[str, str]]:
    return registered(app) - documented(doc)


def test_the_document_is_valid_openapi_3_1():
    doc = document("1.2.3")
    validate(doc)
    assert doc["openapi"] == "3.1.0" and doc["info"]["version"] == "1.2.3"


async def test_every_route_is_documented_and_every_operation_served(node):
    doc = document(version())
    assert undocumented(node.app, doc) == set()
    assert documented(doc) - registered(node.app) == set()  # nothing described that does not exist
    assert {("/{handle}", "get"), ("/", "get"), ("/api/openapi.json", "get"), ("/api/handles/{handle}", "put")} <= registered(node.app)


async def test_a_route_without_documentation_is_found(node):
    app = web.Application()
    for resource in node.app.router.resources():
        for route in resource:
            if route.method != hdrs.METH_ANY:
                app.router.add_route(route.method, resource.canonical, route.handler)
    app.router.add_get("/api/brand-new/{thing}", route.handler, allow_head=False)
    assert undocumented(app, document(version())) == {("/api/brand-new/{thing}", "get")}


async def test_the_document_is_served(node):
    async with node.session.get(node.url(ROUTE, secure=False)) as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        assert await resp.json() == document(version())


def test_every_response_code_is_described():
    doc = document("x")
    codes = {entry["const"] for entry in doc["components"]["schemas"]["ResponseCode"]["oneOf"]}
    assert {1, 2, 3, 4, 100, 101, 102, 200, 201, 202, 301, 303, 402, 403} <= codes
    described = doc["info"]["description"]
    assert "| 303 | PREFIX_REFERRAL |" in described and "| 6 | RECURSION_COUNT_TOO_HIGH |" in described
    statuses = set(doc["paths"]["/api/handles/{handle}"]["get"]["responses"])
    assert {"200", "300", "304", "400", "401", "403", "404", "502", "503", "504", "508"} <= statuses
