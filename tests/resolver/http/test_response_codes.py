"""One test per row of the responseCode ↔ HTTP status table idres implements (handle-http-api.md §5)."""

from __future__ import annotations

import time

from registry.pg import db
from tests.nodes import InProcessNode
from tests.pgproxy import PgProxy

URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.com/"}


async def ask(node, method, path, *, auth=True, secure=True, **kwargs):
    headers = {**(node.auth() if auth else {}), **kwargs.pop("headers", {})}
    r = await node.session.request(method, node.url(path, secure=secure), headers=headers, **kwargs)
    return r.status, await r.json(content_type=None)


async def test_1_success_201_created_200_otherwise(node):
    assert await ask(node, "PUT", "/api/handles/88.101/R1", json=[URL_VALUE]) == (201, {"responseCode": 1, "handle": "88.101/R1"})
    assert await ask(node, "PUT", "/api/handles/88.101/R1", json=[URL_VALUE]) == (200, {"responseCode": 1, "handle": "88.101/R1"})
    status, body = await ask(node, "GET", "/api/handles/88.101/R1", auth=False)
    assert (status, body["responseCode"]) == (200, 1)


async def test_2_error_500_without_a_traceback(node):
    await ask(node, "PUT", "/api/handles/88.101/R2", json=[URL_VALUE])
    async with db.connection(node.dsn) as conn:
        await conn.execute("UPDATE handles SET vals = '\\x00000001ff'::bytea WHERE handle = '88.101/R2'")
    node.node.engine.invalidate("88.101/R2")
    status, body = await ask(node, "GET", "/api/handles/88.101/R2?type=URL", auth=False)
    assert status == 500 and body["responseCode"] == 2
    assert "cannot be decoded" in body["message"] and "Traceback" not in body["message"]


async def test_3_server_too_busy_503_when_the_database_is_gone(dsn, tmp_path):
    proxy = await PgProxy(dsn).start()
    try:
        async with InProcessNode(proxy.dsn, tmp_path) as node:
            await node.provision("88.101")
            proxy.cut()
            status, body = await ask(node, "GET", "/api/handles/88.101/UNCACHED", auth=False)
            assert (status, body["responseCode"]) == (503, 3)
            assert "database is unavailable" in body["message"]
            r = await node.session.get(node.url("/readyz", secure=False))
            assert r.status == 503 and (await r.json())["database"] is False
            proxy.restore()
            deadline = time.monotonic() + 30
            while (await ask(node, "GET", "/api/handles/88.101/UNCACHED", auth=False))[0] != 404:
                assert time.monotonic() < deadline, "the node did not recover when the database came back"
    finally:
        await proxy.close()


async def test_4_protocol_error_400(node):
    status, body = await ask(node, "PUT", "/api/handles/88.101/R4", data=b"{", headers={"Content-Type": "application/json"})
    assert (status, body["responseCode"]) == (400, 4)


async def test_5_operation_not_supported_501(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, allow_list_handles=False) as node:
        await node.provision("88.101")
        assert (await ask(node, "GET", "/api/handles?prefix=88.101"))[1]["responseCode"] == 5
        assert (await ask(node, "GET", "/api/handles?prefix=88.101"))[0] == 501


async def test_100_handle_not_found_404(node):
    assert await ask(node, "GET", "/api/handles/88.101/NONE", auth=False) == (404, {"responseCode": 100, "handle": "88.101/NONE"})


async def test_101_handle_already_exists_409(node):
    await ask(node, "PUT", "/api/handles/88.101/R101", json=[URL_VALUE])
    assert await ask(node, "PUT", "/api/handles/88.101/R101?overwrite=false", json=[URL_VALUE]) == (
        409, {"responseCode": 101, "handle": "88.101/R101"})


async def test_102_invalid_handle_400(node):
    status, body = await ask(node, "GET", "/api/handles/", auth=False)
    assert (status, body["responseCode"]) == (400, 102)


async def test_200_values_not_found_200_on_resolve_400_on_remove(node):
    await ask(node, "PUT", "/api/handles/88.101/R200", json=[URL_VALUE])
    status, body = await ask(node, "GET", "/api/handles/88.101/R200?index=9", auth=False)
    assert (status, body) == (200, {"responseCode": 200, "handle": "88.101/R200", "values": []})
    status, body = await ask(node, "DELETE", "/api/handles/88.101/R200?index=9")
    assert (status, body["responseCode"]) == (400, 200)


async def test_201_value_already_exists_409(node):
    await ask(node, "PUT", "/api/handles/88.101/R201", json=[URL_VALUE])
    status, body = await ask(node, "PUT", "/api/handles/88.101/R201?index=1&overwrite=false", json=[URL_VALUE])
    assert (status, body["responseCode"]) == (409, 201)


async def test_202_invalid_value_400(node):
    status, body = await ask(node, "PUT", "/api/handles/88.101/R202", json=[{**URL_VALUE, "index": 0}])
    assert (status, body["responseCode"]) == (400, 202)


async def test_301_server_not_responsible_400(node):
    status, body = await ask(node, "GET", "/api/handles/77.1/x", auth=False)
    assert (status, body["responseCode"]) == (400, 301)


async def test_401_insufficient_permissions_403(node):
    await node.provision("88.102")
    status, body = await ask(node, "PUT", "/api/handles/88.102/R401", json=[URL_VALUE])
    assert (status, body["responseCode"]) == (403, 401)


async def test_402_authentication_needed_401_over_https_403_over_http(node):
    assert (await ask(node, "PUT", "/api/handles/88.101/R402", auth=False, json=[URL_VALUE]))[0] == 401
    status, body = await ask(node, "PUT", "/api/handles/88.101/R402", auth=False, secure=False, json=[URL_VALUE])
    assert (status, body["responseCode"]) == (403, 402)
