"""PUT and DELETE /api/handles, listing, prefixes: spec §4.2–§4.6 against a real node."""

from __future__ import annotations

import re

import pytest

from tests.nodes import InProcessNode, basic

URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.com/p/1"}


async def call(node, method, path, *, auth=True, secure=True, **kwargs):
    headers = kwargs.pop("headers", {})
    if auth:
        headers = {**(node.auth() if auth is True else auth), **headers}
    r = await node.session.request(method, node.url(path, secure=secure), headers=headers, **kwargs)
    return r.status, await r.json(content_type=None), r


async def values_of(node, handle):
    """The values written by clients (the node's own HS_SIGNATURE left out; test_signed_records covers it)."""
    r = await node.session.get(node.url(f"/api/handles/{handle}"), headers=node.auth())
    body = await r.json()
    return {v["index"]: v for v in body.get("values", []) if v["type"] != "HS_SIGNATURE"}


async def test_create_then_replace_then_refuse_overwrite(node):
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/A1", json=[URL_VALUE])
    assert (status, body) == (201, {"responseCode": 1, "handle": "88.101/A1"})
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/a1", json={"values": [{**URL_VALUE, "data": "https://new"}]})
    assert (status, body) == (200, {"responseCode": 1, "handle": "88.101/a1"})
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/A1?overwrite=false", json=[URL_VALUE])
    assert (status, body) == (409, {"responseCode": 101, "handle": "88.101/A1"})
    assert (await values_of(node, "88.101/A1"))[1]["data"]["value"] == "https://new"


async def test_replace_keeps_timestamps_of_unchanged_values(node, store):
    await call(node, "PUT", "/api/handles/88.101/T", json=[URL_VALUE, {"index": 2, "type": "X", "data": "a"}])
    stored = await store.get("88.101/T")
    aged = stored.record.with_values(v.stamped(1_000_000_000) for v in stored.record.values)
    await store.replace(aged, stored.version)  # as if written in 2001
    await call(node, "PUT", "/api/handles/88.101/T", json=[URL_VALUE, {"index": 2, "type": "X", "data": "b"}])
    after = await values_of(node, "88.101/T")
    assert after[1]["timestamp"] == "2001-09-09T01:46:40Z"  # unchanged: keeps its timestamp
    assert after[2]["data"]["value"] == "b" and after[2]["timestamp"] != "2001-09-09T01:46:40Z"


@pytest.mark.parametrize(
    "body",
    [
        [URL_VALUE],
        {"values": [URL_VALUE], "ignored": True},
        URL_VALUE,
        {"handle": "88.101/B1", "values": [URL_VALUE]},
    ],
)
async def test_body_forms(node, body):
    status, _, _ = await call(node, "PUT", "/api/handles/88.101/B1", json=body)
    assert status == 201
    assert (await values_of(node, "88.101/B1"))[1]["data"]["value"] == URL_VALUE["data"]


async def test_add_and_replace_values(node):
    await call(node, "PUT", "/api/handles/88.101/C1", json=[URL_VALUE])
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/C1?index=2", json=[{"index": 2, "type": "EMAIL", "data": "a@b"}])
    assert (status, body["responseCode"]) == (201, 1)
    status, _, _ = await call(node, "PUT", "/api/handles/88.101/C1?index=2&index=3",
                              json=[{"index": 2, "type": "EMAIL", "data": "c@d"}, {"index": 3, "type": "X", "data": "x"}])
    assert status == 200  # index 2 was overwritten
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/C1?index=various&overwrite=false", json=[{"index": 3, "type": "X", "data": "y"}])
    assert (status, body["responseCode"]) == (409, 201)
    values = await values_of(node, "88.101/C1")
    assert {i: v["data"]["value"] for i, v in values.items()} == {1: URL_VALUE["data"], 2: "c@d", 3: "x"}


async def test_add_values_errors(node):
    await call(node, "PUT", "/api/handles/88.101/C2", json=[URL_VALUE])
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/C2?index=5", json=[{"index": 6, "type": "X", "data": "x"}])
    assert (status, body["responseCode"], body["message"]) == (400, 4, "Mismatched indexes in PUT request")
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/NOPE?index=5", json=[{"index": 5, "type": "X", "data": "x"}])
    assert (status, body) == (404, {"responseCode": 100, "handle": "88.101/NOPE"})
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/C2?index=various", json=[])
    assert (status, body["responseCode"]) == (400, 202)


async def test_remove_values(node):
    await call(node, "PUT", "/api/handles/88.101/D1", json=[URL_VALUE, {"index": 2, "type": "X", "data": "x"}])
    status, body, _ = await call(node, "DELETE", "/api/handles/88.101/D1?index=2&index=7")
    assert (status, body["responseCode"]) == (400, 200)
    assert set(await values_of(node, "88.101/D1")) == {1, 2}  # nothing removed
    status, body, _ = await call(node, "DELETE", "/api/handles/88.101/D1?index=2")
    assert (status, body) == (200, {"responseCode": 1, "handle": "88.101/D1"})
    assert set(await values_of(node, "88.101/D1")) == {1}


async def test_delete(node):
    await call(node, "PUT", "/api/handles/88.101/E1", json=[URL_VALUE])
    status, body, _ = await call(node, "DELETE", "/api/handles/88.101/E1")
    assert (status, body) == (200, {"responseCode": 1, "handle": "88.101/E1"})
    status, body, _ = await call(node, "DELETE", "/api/handles/88.101/E1")
    assert (status, body) == (404, {"responseCode": 100, "handle": "88.101/E1"})
    r = await node.session.get(node.url("/api/handles/88.101/E1", secure=False))
    assert r.status == 404


async def test_authentication_is_demanded_before_existence(node):
    status, body, r = await call(node, "DELETE", "/api/handles/88.101/MISSING", auth=False)
    assert (status, body) == (401, {"responseCode": 402, "handle": "88.101/MISSING"})
    assert r.headers["WWW-Authenticate"] == 'Basic realm="handle"'


async def test_credentials_over_plain_http_are_refused(node):
    status, body, r = await call(node, "PUT", "/api/handles/88.101/F1", secure=False, json=[URL_VALUE])
    assert (status, body["responseCode"]) == (403, 402)
    assert "HTTPS" in body["message"] and "WWW-Authenticate" not in r.headers


async def test_credentials_over_plain_http_when_the_operator_allows(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, allow_http_auth=True) as node:
        await node.provision("88.101")
        status, _, _ = await call(node, "PUT", "/api/handles/88.101/F2", secure=False, json=[URL_VALUE])
        assert status == 201


@pytest.mark.parametrize("user, secret", [("300:88.101/ADMIN", "wrong"), ("300:88.101/NOBODY", "x"), ("301:88.101/ADMIN", None)])
async def test_wrong_credentials(node, user, secret):
    secret = secret or node.admins["88.101"].secret
    status, body, r = await call(node, "PUT", "/api/handles/88.101/G1", auth=basic(user, secret), json=[URL_VALUE])
    assert (status, body["responseCode"]) == (401, 402)
    assert body["message"].startswith("Identity not verified") and body["handle"] == "88.101/G1"


async def test_admin_of_one_prefix_cannot_write_another(node):
    await node.provision("88.102")
    status, body, _ = await call(node, "PUT", "/api/handles/88.102/H1", auth=node.auth("88.101"), json=[URL_VALUE])
    assert (status, body["responseCode"]) == (403, 401)
    status, _, _ = await call(node, "PUT", "/api/handles/88.102/H1", auth=node.auth("88.102"), json=[URL_VALUE])
    assert status == 201


async def test_handle_admin_grants_are_honoured(node):
    """An identity named in a handle's HS_ADMIN (not a prefix admin) may change that handle only as granted."""
    await call(node, "PUT", "/api/handles/88.101/USER1", json=[{"index": 300, "type": "HS_SECKEY", "data": "pw1", "permissions": "1100"}])
    grant = {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": "88.101/USER1", "index": 300, "permissions": "000001010000"}}}
    await call(node, "PUT", "/api/handles/88.101/OWNED", json=[grant, URL_VALUE])
    user = basic("300:88.101/USER1", "pw1")
    status, _, _ = await call(node, "PUT", "/api/handles/88.101/OWNED?index=1", auth=user, json=[{**URL_VALUE, "data": "https://changed"}])
    assert status == 200  # MODIFY_VALUE granted
    status, body, _ = await call(node, "DELETE", "/api/handles/88.101/OWNED?index=1", auth=user)
    assert (status, body["responseCode"]) == (403, 401)  # REMOVE_VALUE not granted
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/OTHER", auth=user, json=[URL_VALUE])
    assert (status, body["responseCode"]) == (403, 401)  # no ADD_HANDLE on the prefix


async def test_mint(node):
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/?mintNewSuffix=true&overwrite=false", json=[URL_VALUE])
    assert status == 201
    assert re.fullmatch(r"88\.101/[0-9a-f]{32}", body["handle"])
    assert (await values_of(node, body["handle"]))[1]["data"]["value"] == URL_VALUE["data"]


async def test_list_handles_with_paging(node):
    for n in range(5):
        await call(node, "PUT", f"/api/handles/88.101/L{n}", json=[URL_VALUE])
    status, body, _ = await call(node, "GET", "/api/handles?prefix=88.101&page=1&pageSize=2")
    assert status == 200
    assert body == {"responseCode": 1, "prefix": "88.101", "totalCount": "6", "page": 1, "pageSize": 2, "handles": ["88.101/L1", "88.101/L2"]}
    status, body, _ = await call(node, "GET", "/api/handles/?prefix=0.NA/88.101&pageSize=0&page=0")
    assert (body["totalCount"], body["handles"]) == ("6", [])
    status, body, _ = await call(node, "GET", "/api/handles?prefix=88.101", auth=False)
    assert (status, body["responseCode"]) == (401, 402)
    status, body, _ = await call(node, "GET", "/api/handles?prefix=99")
    assert (status, body["responseCode"]) == (400, 301)


async def test_listing_can_be_switched_off(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, allow_list_handles=False) as node:
        await node.provision("88.101")
        status, body, _ = await call(node, "GET", "/api/handles?prefix=88.101")
        assert (status, body["responseCode"]) == (501, 5)


async def test_prefixes_need_a_server_admin(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, server_admins="300:88.101/ADMIN") as node:
        await node.provision("88.101")
        other = await node.provision("88.102")
        status, body, _ = await call(node, "POST", "/api/prefixes/88.200", auth=basic(str(other.identity), other.secret))
        assert (status, body["responseCode"]) == (403, 401)
        status, body, _ = await call(node, "POST", "/api/prefixes/88.200")
        assert (status, body) == (200, {"responseCode": 1, "handle": "88.200"})
        status, body, _ = await call(node, "GET", "/api/prefixes")
        assert body == {"responseCode": 1, "totalCount": "3", "prefixes": ["0.NA/88.101", "0.NA/88.102", "0.NA/88.200"]}
        r = await node.session.get(node.url("/api/handles/0.NA/88.200", secure=False))
        site = (await r.json())["values"][0]
        assert site["type"] == "HS_SITE" and site["data"]["format"] == "site"
        status, _, _ = await call(node, "PUT", "/api/handles/88.200/X", json=[URL_VALUE])
        assert status == 201  # a server admin may write anywhere
        status, body, _ = await call(node, "DELETE", "/api/prefixes/88.200")
        assert status == 200
        r = await node.session.get(node.url("/api/handles/88.200/X", secure=False))
        assert (r.status, (await r.json())["responseCode"]) == (400, 301)


async def test_an_unchanged_put_writes_nothing(node, store):
    await call(node, "PUT", "/api/handles/88.101/SAME", json=[URL_VALUE])
    before = await store.get("88.101/SAME")
    await call(node, "PUT", "/api/handles/88.101/USER2", json=[{"index": 300, "type": "HS_SECKEY", "data": "pw2", "permissions": "1100"}])
    stranger = basic("300:88.101/USER2", "pw2")  # no grant on 88.101/SAME
    status, _, _ = await call(node, "PUT", "/api/handles/88.101/SAME", auth=stranger, json=[URL_VALUE])
    assert status == 200
    status, _, _ = await call(node, "PUT", "/api/handles/88.101/SAME?index=1", auth=stranger, json=[URL_VALUE])
    assert status == 200
    after = await store.get("88.101/SAME")
    assert (after.version, after.vals) == (before.version, before.vals)  # not re-signed, no change logged
    status, body, _ = await call(node, "PUT", "/api/handles/88.101/SAME", auth=stranger, json=[{**URL_VALUE, "data": "x"}])
    assert (status, body["responseCode"]) == (403, 401)


async def test_rewriting_a_secret_cannot_tell_whether_a_guess_was_right(node):
    await call(node, "PUT", "/api/handles/88.101/VAULT", json=[URL_VALUE, {"index": 300, "type": "HS_SECKEY", "data": "right", "permissions": "1100"}])
    await call(node, "PUT", "/api/handles/88.101/USER3", json=[{"index": 300, "type": "HS_SECKEY", "data": "pw3", "permissions": "1100"}])
    stranger = basic("300:88.101/USER3", "pw3")
    answers = []
    for guess in ("right", "wrong"):
        value = {"index": 300, "type": "HS_SECKEY", "data": guess, "permissions": "1100"}
        status, body, _ = await call(node, "PUT", "/api/handles/88.101/VAULT?index=300", auth=stranger, json=[value])
        answers.append((status, body["responseCode"]))
    assert answers == [(403, 401), (403, 401)]


async def test_values_of_a_prefix_no_longer_homed_cannot_be_removed(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, server_admins="300:88.101/ADMIN") as node:
        await node.provision("88.101")
        await node.provision("88.102")
        await call(node, "PUT", "/api/handles/88.102/GONE", json=[URL_VALUE, {"index": 2, "type": "X", "data": "x"}])
        assert (await call(node, "DELETE", "/api/prefixes/88.102"))[0] == 200
        status, body, _ = await call(node, "DELETE", "/api/handles/88.102/GONE?index=2")
        assert (status, body["responseCode"]) == (400, 301)  # it could not be signed anew
        status, _, _ = await call(node, "DELETE", "/api/handles/88.102/GONE")
        assert status == 200  # deleting a handle of an unhomed prefix stays possible


async def test_jsonp_is_not_offered_to_authenticated_callers(node):
    await call(node, "PUT", "/api/handles/88.101/KEYED", json=[{"index": 300, "type": "HS_SECKEY", "data": "s", "permissions": "1100"}])
    r = await node.session.get(node.url("/api/handles/88.101/KEYED?callback=steal&publicOnly=false"), headers=node.auth())
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert not (await r.text()).startswith("steal(")
