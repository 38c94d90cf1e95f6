"""The paths of the OpenAPI document: each route's operations, the parameters its handler reads, and
the statuses it answers with (the responseCodes each carries are named in the descriptions)."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/{model}"
JSON = "application/json"
JSONP = "application/javascript"
HTML = "text/html"
NDJSON = "application/x-ndjson"
PROMETHEUS = "text/plain; version=0.0.4"
OPTIONAL_AUTH: list[dict[str, list]] = [{}, {"basicAuth": []}]
REQUIRED_AUTH: list[dict[str, list]] = [{"basicAuth": []}]

ERRORS = {
    "300": "a referral (responseCode 303): resolve at the node the values name",
    "304": "not modified: If-None-Match names the answer's ETag",
    "400": "malformed request (4), invalid handle (102) or value (202), prefix not served here (301), no value at an index (200)",
    "401": "over HTTPS: credentials needed or refused (402), with WWW-Authenticate",
    "403": "credentials needed over plain HTTP (402), refused, or not allowed (400, 401)",
    "404": "no such handle (100)",
    "409": "the handle (101) or an index (201) exists",
    "408": "the request body did not arrive within IDRES_BODY_TIMEOUT (4)",
    "413": "the body is over IDRES_MAX_BODY_BYTES (4)",
    "422": "the Idempotency-Key was sent before with another body (4)",
    "429": "over a rate limit (3); Retry-After says when to try again",
    "500": "unexpected error (2): the message names an incident in the server log",
    "501": "listing handles is switched off on this node (5)",
    "502": "the node serving a delegated prefix answered with something idres cannot relay, or a record that does not verify (2)",
    "503": "the database is unavailable, or a write kept conflicting (3); Retry-After says when to try again",
    "504": "no node serving a delegated prefix answered in time (301)",
    "508": "a resolution loop, or more nodes than IDRES_MAX_HOPS (6)",
}
READ_ERRORS = ("400", "401", "403", "404", "429", "500", "502", "503", "504", "508")
WRITE_ERRORS = ("400", "401", "403", "404", "408", "409", "413", "429", "500", "503")
ADMIN_ERRORS = ("400", "401", "403", "429", "500", "503")


def ref(model: str) -> dict[str, str]:
    return {"$ref": REF.format(model=model)}


def content(model: str, *, jsonp: bool = False, html: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {JSON: {"schema": ref(model)}}
    if jsonp:
        found[JSONP] = {"schema": {"type": "string", "description": "callback(JSON);"}}
    if html:
        found[HTML] = {"schema": {"type": "string"}}
    return found


def response(description: str, model: str | None = None, **kinds: bool) -> dict[str, Any]:
    return {"description": description, **({"content": content(model, **kinds)} if model else {})}


def errors(statuses: tuple[str, ...], *, body: bool = True, **kinds: bool) -> dict[str, Any]:
    return {s: response(ERRORS[s], "ErrorBody" if body and s != "304" else None, **kinds) for s in statuses}


def param(name: str, where: str, schema: dict[str, Any], description: str, *, required: bool = False,
          example: Any = None) -> dict[str, Any]:
    found = {"name": name, "in": where, "schema": schema, "description": description, "required": required or where == "path"}
    if example is not None:
        found["example"] = example
    if schema.get("type") == "array":
        found.update(style="form", explode=True)
    return found


FLAG = {"type": "boolean"}
HANDLE_TEXT = "the handle, slashes included (88.101.5/SN-000123); a handle without '/' is the prefix handle 0.NA/<it>"
HANDLE = param("handle", "path", {"type": "string", "minLength": 1}, HANDLE_TEXT, example="88.101.5/SN-000123")
NEW_HANDLE = param("handle", "path", {"type": "string", "minLength": 1}, HANDLE_TEXT, example="88.101.5/SN-900001")
PREFIX = param("prefix", "path", {"type": "string", "minLength": 1}, "the prefix (88.101.5, or 0.NA/88.101.5)", example="88.101.5.9")
PRETTY = param("pretty", "query", FLAG, "indent the JSON")
CALLBACK = param("callback", "query", {"type": "string"}, "JSONP: wrap the answer in this function (anonymous requests only)")
PAGING = [param("page", "query", {"type": "integer", "maximum": 2**31 - 1}, "zero-based page; all when absent or negative"),
          param("pageSize", "query", {"type": "integer", "maximum": 2**31 - 1}, "entries per page; 0 gives only the count")]
RESOLUTION_PARAMS = [
    HANDLE,
    param("index", "query", {"type": "array", "items": {"type": "integer"}}, "only values at these indexes (or of these types)",
          example=[1]),
    param("type", "query", {"type": "array", "items": {"type": "string"}},
          "only values of these types, any case; 'T.' also matches T and T.*", example=["URL"]),
    param("publicOnly", "query", FLAG, "only public values; by default true for anonymous callers, false with credentials"),
    param("doNotRefer", "query", FLAG, "false: refer the client to a delegate (HTTP 300) instead of resolving for it"),
    param("cert", "query", FLAG, "sign the answer itself (RFC 9421 Signature and Content-Digest headers)"),
    param("auth", "query", FLAG, "authoritative answer; accepted and ignored by an end node"),
    param("If-None-Match", "header", {"type": "string"}, "an ETag of an earlier answer: 304 when it is still the answer"),
    PRETTY, CALLBACK,
]


def _resolution(method: str) -> dict[str, Any]:
    body = method != "head"
    operation: dict[str, Any] = {
        "operationId": f"{method}Handle",
        "summary": {"get": "Resolve a handle", "head": "Resolve a handle, headers only",
                    "post": "Resolve a handle, parameters in a JSON body"}[method],
        "tags": ["handles"],
        "security": OPTIONAL_AUTH,
        "parameters": RESOLUTION_PARAMS,
        "responses": {
            "200": response("the record's values (responseCode 1), or none that match (200)", "HandleAnswer" if body else None, jsonp=body),
            "300": response(ERRORS["300"], "Referral" if body else None, jsonp=body),
            "304": response(ERRORS["304"]),
            **errors(READ_ERRORS + (("408", "413") if method == "post" else ()), body=body, jsonp=body),
        },
    }
    if method == "post":
        operation["description"] = "POST is GET with parameters: those missing from the query are taken from the body's keys."
        operation["requestBody"] = {"required": False, "content": {JSON: {"schema": {
            "type": "object", "description": "query parameters by name; an array for a repeated one"}}}}
    return operation


def _handle_writes() -> dict[str, Any]:
    put = {
        "operationId": "putHandle", "tags": ["handles"], "security": REQUIRED_AUTH,
        "summary": "Create or replace a record; mint a handle; add or replace values (index=…)",
        "parameters": [
            NEW_HANDLE,
            param("overwrite", "query", {"type": "string"}, "only 'true' (any case) is true; default true"),
            param("mintNewSuffix", "query", {"type": "string"}, "'true': mint a new suffix under the handle, which ends with '/'"),
            param("index", "query", {"type": "array", "items": {"type": "string", "pattern": "^([0-9]+|various)$"}},
                  "add or replace only these values (their indexes, or 'various')"),
        ],
        "requestBody": {"required": True, "content": {JSON: {"schema": {"anyOf": [
            {"type": "array", "items": ref("HandleValueInput")}, ref("ValuesObject"), ref("HandleValueInput")]},
            "example": {"values": [{"index": 1, "type": "URL", "data": "https://products.example.com/washers/SN-900001"}]}}}},
        "responses": {"200": response("replaced (responseCode 1)", "Done"), "201": response("created (responseCode 1)", "Done"),
                      **errors(WRITE_ERRORS)},
    }
    delete = {
        "operationId": "deleteHandle", "tags": ["handles"], "security": REQUIRED_AUTH,
        "summary": "Delete a handle, or only the values at index=…",
        "parameters": [NEW_HANDLE, param("index", "query", {"type": "array", "items": {"type": "integer"}}, "remove only these values")],
        "responses": {"200": response("deleted (responseCode 1)", "Done"), **errors(WRITE_ERRORS)},
    }
    return {"put": put, "delete": delete}


def _listing(method: str) -> dict[str, Any]:
    body = method == "get"
    return {
        "operationId": f"{method}HandleList", "tags": ["handles"], "security": REQUIRED_AUTH,
        "summary": "List the handles under a prefix (LIST_HANDLES on 0.NA/<prefix>); also /api/handles/?prefix=",
        "parameters": [param("prefix", "query", {"type": "string"}, "the prefix, 88.101.5 or 0.NA/88.101.5", required=True,
                             example="88.101.5"),
                       *PAGING, PRETTY, CALLBACK],
        "responses": {"200": response("the handles", "HandleList" if body else None, jsonp=body),
                      **errors(("400", "401", "403", "429", "500", "501", "503"), body=body, jsonp=body)},
    }


def _admin(operation_id: str, summary: str, model: str, parameters: list, **extra: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "tags": ["node"], "security": REQUIRED_AUTH, "summary": summary,
            "parameters": parameters, "responses": {"200": response(summary, model), **errors(ADMIN_ERRORS)}, **extra}


def _prefixes() -> dict[str, Any]:
    listing = lambda suffix: _admin(f"listPrefixes{suffix}", "The prefixes homed here (server admins)", "PrefixList", PAGING)  # noqa: E731
    query_prefix = param("prefix", "query", {"type": "string"}, "the prefix to home")
    return {
        "/api/prefixes": {"get": listing(""), "post": _admin("homePrefixByQuery", "Home a prefix given as ?prefix=", "Done", [query_prefix])},
        "/api/prefixes/": {"get": listing("Slash")},
        "/api/prefixes/{prefix}": {"post": _admin("homePrefix", "Home a prefix (server admins)", "Done", [PREFIX]),
                                   "delete": _admin("unhomePrefix", "Unhome a prefix; its handles stay", "Done", [PREFIX])},
    }


def _delegations() -> dict[str, Any]:
    body = {"required": True, "content": {JSON: {"schema": {"anyOf": [ref("DelegateTo"), ref("DelegateSites")]}}}}
    post = _admin("delegatePrefix", "Delegate a prefix derived from a homed one to other nodes", "Done", [PREFIX], requestBody=body)
    post["responses"].update(errors(("408", "409", "413", "502", "504")))
    delete = _admin("undelegatePrefix", "Remove a delegation", "Done", [PREFIX])
    delete["responses"].update(errors(("404", "409")))
    return {
        "/api/delegations": {"get": _admin("listDelegations", "The prefixes this node delegates (server admins)", "DelegationList", [])},
        "/api/delegations/{prefix}": {"post": post, "delete": delete},
    }


def _open(operation_id: str, summary: str, model: str, *, tag: str = "node", extra: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"operationId": operation_id, "tags": [tag], "summary": summary, "security": [{}],
            "responses": {"200": response(summary, model), **{s: response(ERRORS[s], model if s == "503" and model == "Readiness" else "ErrorBody")
                                                                for s in extra}}}


def _batch() -> dict[str, Any]:
    items = {"type": "array", "items": ref("BatchItem")}
    post = {
        "operationId": "batch", "tags": ["handles"], "security": REQUIRED_AUTH,
        "summary": "Many writes in one request: one result line per item, in input order, as each chunk commits",
        "parameters": [param("Idempotency-Key", "header", {"type": "string", "maxLength": 200},
                             "the same key with the same body replays what was applied instead of applying it again")],
        "requestBody": {"required": True, "content": {
            NDJSON: {"schema": {"type": "string", "description": "one BatchItem per line"}}, JSON: {"schema": items}}},
        "responses": {"200": {"description": "a BatchResult per item, then {\"done\": true, \"items\": N, \"failed\": F}",
                              "content": {NDJSON: {"schema": {"type": "string"}}}},
                      **errors(("400", "401", "403", "408", "413", "422", "429", "500", "503"))},
    }
    return {"/api/batch": {"post": post}}


def _sessions() -> dict[str, Any]:
    session = response("the session", "Session")
    refused = errors(("400", "401", "403", "408", "413", "429", "500", "503"))
    answer_body = {"required": False, "content": {JSON: {"schema": ref("SessionAnswer")}}}
    this = lambda operation_id, summary, **extra: {  # noqa: E731
        "operationId": operation_id, "tags": ["sessions"], "summary": summary, "security": [{}],
        "description": "The session is named by the header Authorization: Handle sessionId=\"…\"",
        "responses": {"200": session, **refused}, **extra}
    return {
        "/api/sessions": {"post": {
            "operationId": "openSession", "tags": ["sessions"], "security": OPTIONAL_AUTH,
            "summary": "Open a session and get its challenge (HTTPS); with Basic credentials it is authenticated at once",
            "requestBody": {"required": False, "content": {JSON: {"schema": {"type": "object"}}}},
            "responses": {"201": response("the session and its nonce", "Session"), **refused}}},
        "/api/sessions/this": {
            "get": this("getSession", "The session named in the Authorization header"),
            "put": this("answerSession", "Answer the session's challenge", requestBody=answer_body),
            "post": this("answerSessionPost", "Answer the session's challenge", requestBody=answer_body),
            "delete": {**this("closeSession", "End the session"), "responses": {"204": {"description": "ended"}, **refused}},
        },
    }


def _observability() -> dict[str, Any]:
    period = [param("from", "query", {"type": "string"}, "ISO 8601 start (included); default: 24 hours before 'to'",
                    example="2026-11-29T00:00:00Z"),
              param("to", "query", {"type": "string"}, "ISO 8601 end (excluded); default: now")]
    stats = _admin("prefixStats", "Resolutions, not-found answers and registrations of a prefix, per hour", "PrefixStats",
                   [param("prefix", "query", {"type": "string"}, "the prefix", required=True, example="88.101.5"), *period])
    report = _admin("statsReport", "The statistics of every homed prefix: the report a parent node pulls (server admins)",
                    "StatsReport", period)
    metrics = {"operationId": "metrics", "tags": ["node"], "security": [{}],
               "summary": "Prometheus metrics of every worker of the node (docs/metrics.md)",
               "responses": {"200": {"description": "the Prometheus text format",
                                     "content": {PROMETHEUS: {"schema": {"type": "string"}}}},
                             "501": response("metrics are switched off (5)", "ErrorBody")}}
    return {"/api/stats": {"get": stats}, "/api/stats/report": {"get": report}, "/metrics": {"get": metrics}}


def _sync() -> dict[str, Any]:
    prefixes = param("prefix", "query", {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                     "the prefixes (repeatable, or comma-separated); the feed: all the caller may read when absent")
    after = param("after", "query", {"type": "integer", "minimum": 0}, "the cursor to continue after (0: the start)")
    limit = param("limit", "query", {"type": "integer", "minimum": 1}, "at most this many changes (IDRES_SYNC_MAX_LIMIT)")
    wait = param("wait", "query", {"type": "number", "minimum": 0}, "long-poll: wait up to this many seconds for a change (IDRES_SYNC_MAX_WAIT)")
    chunk = param("chunk", "query", {"type": "integer", "minimum": 1}, "records per sealed chunk")
    changes = _admin("syncChanges", "The change feed: changes in commit order with their records", "ChangePage",
                     [after, limit, prefixes, wait])
    changes["responses"]["410"] = response("the cursor is older than the retention horizon: take a fresh snapshot (300)", "ErrorBody")
    snapshot = _admin("syncSnapshot", "Every record of the prefixes from one consistent read, streamed", "ErrorBody",
                      [{**prefixes, "required": True}, chunk])
    snapshot["responses"]["200"] = {"description": "NDJSON: a snapshot line, record lines, chunk lines, an end line",
                                    "content": {NDJSON: {"schema": {"type": "string"}}}}
    status = _open("syncStatus", "This node's change feed and the mirrors it keeps", "SyncStatus")
    return {"/api/sync/changes": {"get": changes}, "/api/sync/snapshot": {"get": snapshot}, "/api/sync/status": {"get": status}}


def _browser() -> dict[str, Any]:
    redirect = {"description": "to the record's location: its 10320/loc, else its URL value",
                "headers": {"Location": {"required": True, "schema": {"type": "string"}}}}
    home = {"operationId": "home", "tags": ["browser"], "summary": "The home page, with a lookup form", "security": [{}],
            "parameters": [param("hdl", "query", {"type": "string"}, "a handle: go on to /{handle}", example="88.101.5/SN-000123"),
                           param("noredirect", "query", {"type": "string"}, "with hdl: go on to /{handle}?noredirect")],
            "responses": {"200": {"description": "the page", "content": {HTML: {"schema": {"type": "string"}}}},
                          "302": {"description": "to /{hdl}", "headers": redirect["headers"]}}}
    statuses = ("300", "400", "404", "500", "502", "503", "504", "508")
    page = {"operationId": "browse", "tags": ["browser"], "security": [{}],
            "summary": "Go to a handle's web address, or see its record",
            "description": "302 to the record's location; ?noredirect, or an Accept of text/html without a wildcard, gives "
                           "the record as a page; an Accept preferring application/json gives the REST answer. A path "
                           "that is not a handle (no '/', or under /api/) gets the JSON 404 of unknown paths.",
            "parameters": [param("handle", "path", {"type": "string", "minLength": 1}, "the handle, slashes included",
                                 example="88.101.5/SN-000123"),
                           param("noredirect", "query", {"type": "string"}, "show the record's page instead of redirecting")],
            "responses": {"200": response("the record's page, or its REST answer", "HandleAnswer", html=True), "302": redirect,
                          **{s: response(ERRORS[s], "Referral" if s == "300" else "ErrorBody", html=True) for s in statuses}}}
    head_page = {**page, "operationId": "browseHead",
                 "responses": {s: {k: v for k, v in r.items() if k != "content"} for s, r in page["responses"].items()}}
    head_home = {**home, "operationId": "homeHead",
                 "responses": {s: {k: v for k, v in r.items() if k != "content"} for s, r in home["responses"].items()}}
    return {"/": {"get": home, "head": head_home}, "/{handle}": {"get": page, "head": head_page}}


def paths() -> dict[str, Any]:
    site = _open("getSite", "This node's HS_SITE", "SiteAnswer")
    return {
        "/api/handles/{handle}": {"get": _resolution("get"), "head": _resolution("head"), "post": _resolution("post"), **_handle_writes()},
        "/api/handles": {"get": _listing("get"), "head": _listing("head")},
        **_prefixes(),
        "/api/site": {"get": site},
        "/api/site/": {"get": {**site, "operationId": "getSiteSlash"}},
        **_delegations(),
        **_batch(),
        **_sessions(),
        **_observability(),
        **_sync(),
        "/healthz": {"get": _open("healthz", "The process answers", "Health", tag="health")},
        "/readyz": {"get": _open("readyz", "The worker can serve: database reachable, cache coherent", "Readiness", tag="health",
                                 extra=("503",))},
        "/api/openapi.json": {"get": {"operationId": "openapi", "tags": ["node"], "summary": "This document", "security": [{}],
                                      "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}}}},
        **_browser(),
    }
