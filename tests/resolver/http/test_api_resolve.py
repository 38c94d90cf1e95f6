"""GET /api/handles/{handle}: spec §4.1 against a real node."""

from __future__ import annotations

import base64
import gzip

import pytest

from resolver.core import seckeys

URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.com/p/1"}


async def put(node, handle, values, **params):
    r = await node.session.put(node.url(f"/api/handles/{handle}"), json={"values": values}, headers=node.auth(), params=params)
    assert r.status in (200, 201), await r.text()
    return r


async def get(node, path, secure=False, **kwargs):
    r = await node.session.get(node.url(path, secure=secure), **kwargs)
    return r.status, (await r.json(content_type=None)) if r.status != 204 else None, r


@pytest.fixture
async def product(node):
    values = [
        {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": "0.NA/88.101", "index": 200, "permissions": "011111110011"}}},
        {"index": 3, "type": "MODEL", "data": "WM-7030"},
        {"index": 2, "type": "EMAIL", "data": "service@example.com"},
        URL_VALUE,
        {"index": 300, "type": "HS_SECKEY", "data": "s3cret", "permissions": "1100"},
        {"index": 4, "type": "URL.alt", "data": "https://mirror.example.com/p/1"},
    ]
    await put(node, "88.101/SN-000123", values)
    return "88.101/SN-000123"


async def test_found_values_sorted_with_timestamps_and_spelling_echoed(node, product):
    status, body, r = await get(node, "/api/handles/88.101/sn-000123")
    assert status == 200 and body["responseCode"] == 1
    assert body["handle"] == "88.101/sn-000123"
    indexes = [v["index"] for v in body["values"]]
    assert indexes == sorted(indexes) == [1, 2, 3, 4, 100, 400]  # HS_SECKEY (1100) hidden from anonymous readers
    assert body["values"][-1]["type"] == "HS_SIGNATURE"  # added by the node on every write
    assert all(v["timestamp"].endswith("Z") and v["ttl"] == 86400 for v in body["values"])
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"


async def test_second_read_is_served_from_cache_and_identical(node, product):
    await node.settled()  # the follower will not evict what the first read caches
    _, first, _ = await get(node, "/api/handles/88.101/SN-000123")
    hits = node.node.engine.hits
    _, second, _ = await get(node, "/api/handles/88.101/SN-000123")
    assert second == first
    assert node.node.engine.hits == hits + 1


async def test_prefix_without_slash_is_the_prefix_record(node):
    status, body, _ = await get(node, "/api/handles/88.101")
    assert status == 200 and body["handle"] == "88.101"
    assert "HS_SITE" in [v["type"] for v in body["values"]]
    _, same, _ = await get(node, "/api/handles/0.na/88.101")
    assert same["values"] == body["values"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("type=url", [1]),
        ("type=URL.", [1, 4]),
        ("index=3", [3]),
        ("index=3&type=EMAIL", [2, 3]),
        ("type=MODEL&type=URL", [1, 3]),
    ],
)
async def test_filters_by_index_or_type(node, product, query, expected):
    status, body, _ = await get(node, f"/api/handles/88.101/SN-000123?{query}")
    assert status == 200 and body["responseCode"] == 1
    assert [v["index"] for v in body["values"]] == expected


async def test_filter_matching_nothing_is_200_with_code_200(node, product):
    status, body, _ = await get(node, "/api/handles/88.101/SN-000123?type=NOPE")
    assert (status, body) == (200, {"responseCode": 200, "handle": "88.101/SN-000123", "values": []})


async def test_non_public_values_need_credentials(node, product):
    status, body, r = await get(node, "/api/handles/88.101/SN-000123?publicOnly=false", secure=True)
    assert (status, body["responseCode"]) == (401, 402)
    assert r.headers["WWW-Authenticate"] == 'Basic realm="handle"'
    status, body, _ = await get(node, "/api/handles/88.101/SN-000123?publicOnly=false", secure=False)
    assert (status, body["responseCode"]) == (403, 402)


async def test_admin_reads_secret_values_over_https(node, product):
    status, body, _ = await get(node, "/api/handles/88.101/SN-000123", secure=True, headers=node.auth())
    assert status == 200
    secret = [v for v in body["values"] if v["type"] == "HS_SECKEY"]
    stored = secret[0]["data"]["value"]  # kept hashed (PBKDF2, Handle.Net's encoding), never in clear
    assert secret == [{"index": 300, "type": "HS_SECKEY", "data": {"format": "base64", "value": stored},
                       "permissions": "1100", "ttl": 86400, "timestamp": secret[0]["timestamp"]}]
    assert seckeys.matches(base64.b64decode(stored), b"s3cret") and b"s3cret" not in base64.b64decode(stored)
    _, public, _ = await get(node, "/api/handles/88.101/SN-000123?publicOnly=true", secure=True, headers=node.auth())
    assert 300 not in [v["index"] for v in public["values"]]


async def test_credentials_over_plain_http_are_ignored_for_reads(node, product):
    _, body, _ = await get(node, "/api/handles/88.101/SN-000123", secure=False, headers=node.auth())
    assert 300 not in [v["index"] for v in body["values"]]


async def test_not_found_and_negative_cache_cleared_by_create(node):
    status, body, _ = await get(node, "/api/handles/88.101/Later")
    assert (status, body) == (404, {"responseCode": 100, "handle": "88.101/Later"})
    await put(node, "88.101/LATER", [URL_VALUE])
    status, body, _ = await get(node, "/api/handles/88.101/Later")
    assert status == 200 and body["values"][0]["data"]["value"] == URL_VALUE["data"]


async def test_prefix_not_homed(node):
    status, body, _ = await get(node, "/api/handles/99999/x")
    assert (status, body) == (400, {"responseCode": 301, "message": "That prefix doesn't live here", "handle": "99999/x"})


async def test_empty_handle(node):
    status, body, _ = await get(node, "/api/handles/")
    assert (status, body["responseCode"]) == (400, 102)


async def test_percent_encoding_and_plus(node):
    await put(node, "88.101/a b+c/d", [URL_VALUE])
    status, body, _ = await get(node, "/api/handles/88.101%2Fa%20b+c%2Fd")
    assert status == 200 and body["handle"] == "88.101/a b+c/d"
    status, _, _ = await get(node, "/api/handles/88.101/a%20b%20c/d")
    assert status == 404  # '+' is not a space


async def test_non_ascii_handles_fold_only_ascii(node):
    await put(node, "88.101/Straße-é", [URL_VALUE])
    status, body, _ = await get(node, "/api/handles/88.101/STRAßE-é")
    assert status == 200 and body["handle"] == "88.101/STRAßE-é"
    status, _, _ = await get(node, "/api/handles/88.101/STRASSE-É")
    assert status == 404


async def test_bad_index_parameter(node, product):
    status, body, _ = await get(node, "/api/handles/88.101/SN-000123?index=x")
    assert status == 400
    assert body == {"responseCode": 4, "message": 'java.lang.NumberFormatException: For input string: "x"',
                    "handle": "88.101/SN-000123"}


async def test_pretty_and_callback(node, product):
    r = await node.session.get(node.url("/api/handles/88.101/SN-000123?pretty&type=URL", secure=False))
    text = await r.text()
    assert text.startswith('{\n  "responseCode": 1')
    r = await node.session.get(node.url("/api/handles/88.101/SN-000123?callback=show(1)", secure=False))
    text = await r.text()
    assert r.headers["Content-Type"] == "application/javascript;charset=UTF-8"
    assert text.startswith('show1({"responseCode":1') and text.endswith(");")


async def test_head(node, product):
    r = await node.session.head(node.url("/api/handles/88.101/SN-000123", secure=False))
    assert r.status == 200 and await r.read() == b""
    assert int(r.headers["Content-Length"]) > 100


async def test_gzip_when_accepted(node, product):
    plain = await (await node.session.get(node.url("/api/handles/88.101/SN-000123", secure=False))).read()
    r = await node.session.get(node.url("/api/handles/88.101/SN-000123", secure=False),
                               headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert r.headers["Content-Encoding"] == "gzip" and r.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(await r.read()) == plain


async def test_gzip_bytes_are_stable_and_q0_is_respected(node, product):
    url = node.url("/api/handles/88.101/SN-000123", secure=False)
    first = await (await node.session.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)).read()
    second = await (await node.session.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)).read()
    assert first == second  # no timestamp in the gzip header: equal answers, equal bytes
    r = await node.session.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"}, auto_decompress=False)
    assert "Content-Encoding" not in r.headers


async def test_cors(node, product):
    r = await node.session.get(node.url("/api/handles/88.101/SN-000123", secure=False), headers={"Origin": "https://app.example"})
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Credentials" not in r.headers
    r = await node.session.options(
        node.url("/api/handles/88.101/SN-000123", secure=False),
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"},
    )
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Methods"] == "GET,POST,HEAD,PUT,DELETE"
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    assert r.headers["Access-Control-Max-Age"] == "86400"


async def test_post_is_get_with_parameters(node, product):
    r = await node.session.post(node.url("/api/handles/88.101/SN-000123", secure=False), json={"type": ["MODEL", "EMAIL"]})
    body = await r.json()
    assert r.status == 200 and [v["index"] for v in body["values"]] == [2, 3]


async def test_unknown_endpoint_and_methods(node):
    r = await node.session.get(node.url("/api/foo", secure=False))
    assert (r.status, await r.json()) == (404, {"responseCode": 4, "message": "Unknown HTTP API endpoint GET /api/foo"})
    r = await node.session.request("PATCH", node.url("/api/handles/88.101/x", secure=False))
    assert (r.status, (await r.json())["message"]) == (501, "Unknown method PATCH")
    r = await node.session.put(node.url("/api/site", secure=False))
    assert r.status == 405 and (await r.json())["responseCode"] == 4


async def test_site(node):
    r = await node.session.get(node.url("/api/site", secure=False))
    body = await r.json()
    server = body["site"]["servers"][0]
    assert body["responseCode"] == 1 and server["address"] == "127.0.0.1"
    ports = {i["protocol"]: i["port"] for i in server["interfaces"]}
    assert ports == {"HTTP": node.settings.listen.port, "HTTPS": node.settings.listen.tls_port}
