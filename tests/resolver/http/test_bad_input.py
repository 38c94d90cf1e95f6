"""Bad input gets a clear JSON error with the right responseCode and status, and writes nothing."""

from __future__ import annotations

import asyncio

import pytest

from tests.db_state import snapshot
from tests.nodes import InProcessNode

URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.com/p/1"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def seeded(node):
    r = await node.session.put(node.url("/api/handles/88.101/KEEP"), json=[URL_VALUE, {"index": 2, "type": "X", "data": "x"}], headers=node.auth())
    assert r.status == 201
    return node


CASES = [
    # (name, method, path, body bytes or None, extra headers, status, responseCode, message fragment)
    ("control character in handle", "PUT", "/api/handles/88.101/a%01b", b"[]", JSON, 400, 102, "control character"),
    ("handle over the length limit", "PUT", "/api/handles/88.101/" + "x" * 300, b"[]", JSON, 400, 102, "limit is 255"),
    ("empty suffix", "PUT", "/api/handles/88.101/", b"[]", JSON, 400, 102, "no suffix"),
    ("no prefix", "PUT", "/api/handles//abc", b"[]", JSON, 400, 102, "no prefix"),
    ("invalid UTF-8 in the path", "PUT", "/api/handles/88.101/%FF%FE", b"[]", JSON, 400, 102, "not valid UTF-8"),
    ("invalid UTF-8 in a GET path", "GET", "/api/handles/88.101/%C3%28", None, {}, 400, 102, "not valid UTF-8"),
    ("bad JSON", "PUT", "/api/handles/88.101/KEEP", b'{"values": [', JSON, 400, 4, "not valid JSON"),
    ("invalid UTF-8 in JSON", "PUT", "/api/handles/88.101/KEEP", b'[{"index":1,"type":"URL","data":"\xff"}]', JSON, 400, 4, "not valid JSON"),
    ("wrong content type", "PUT", "/api/handles/88.101/KEEP", b"[]", {"Content-Type": "text/plain"}, 400, 4, "Unsupported media type text/plain"),
    ("no content type", "PUT", "/api/handles/88.101/KEEP", b"[]", {}, 400, 4, "Unsupported media type"),
    ("body is a number", "PUT", "/api/handles/88.101/KEEP", b"42", JSON, 400, 4, "must be an array"),
    ("value without data", "PUT", "/api/handles/88.101/KEEP", b'[{"index":1,"type":"URL"}]', JSON, 400, 4, "missing 'data'"),
    ("zero index", "PUT", "/api/handles/88.101/KEEP", b'[{"index":0,"type":"URL","data":"x"}]', JSON, 400, 202, "Indexes must be positive"),
    ("negative index", "PUT", "/api/handles/88.101/KEEP", b'[{"index":-3,"type":"URL","data":"x"}]', JSON, 400, 202, "Indexes must be positive"),
    ("duplicate indices", "PUT", "/api/handles/88.101/KEEP",
     b'[{"index":1,"type":"URL","data":"x"},{"index":1,"type":"URL","data":"y"}]', JSON, 409, 201, "Index conflict for 1"),
    ("mismatched index set", "PUT", "/api/handles/88.101/KEEP?index=1&index=2", b'[{"index":1,"type":"URL","data":"x"}]', JSON,
     400, 4, "Mismatched indexes"),
    ("mismatched handle in body", "PUT", "/api/handles/88.101/KEEP", b'{"handle":"88.101/OTHER","values":[]}', JSON, 400, 4, "Mismatched handle"),
    ("unknown data format", "PUT", "/api/handles/88.101/KEEP", b'[{"index":1,"type":"URL","data":{"format":"xml","value":"x"}}]', JSON,
     400, 4, "Unexpected type"),
    ("bad base64", "PUT", "/api/handles/88.101/KEEP", b'[{"index":1,"type":"X","data":{"format":"base64","value":"@@"}}]', JSON,
     400, 202, "not valid base64"),
    ("bad admin permissions", "PUT", "/api/handles/88.101/KEEP",
     b'[{"index":100,"type":"HS_ADMIN","data":{"format":"admin","value":{"handle":"0.NA/88.101","index":200,"permissions":"12"}}}]', JSON,
     400, 202, "admin permissions"),
    ("prefix not homed", "PUT", "/api/handles/99999/X", b"[]", JSON, 400, 301, "doesn't live here"),
    ("non-numeric index on DELETE", "DELETE", "/api/handles/88.101/KEEP?index=one", None, {}, 400, 4, "NumberFormatException"),
    ("index=various on DELETE", "DELETE", "/api/handles/88.101/KEEP?index=various", None, {}, 400, 4, "only by PUT"),
    ("missing value index on DELETE", "DELETE", "/api/handles/88.101/KEEP?index=1&index=9", None, {}, 400, 200, "no value at index 9"),
    ("deeply nested JSON", "PUT", "/api/handles/88.101/KEEP", b"[" * 1000 + b"]" * 1000, JSON, 400, 4, "nests deeper than 32"),
    ("deeply nested POST parameters", "POST", "/api/handles/88.101/KEEP", b'{"type":' + b"[" * 1000 + b"]" * 1000 + b"}", JSON,
     400, 4, "nests deeper than 32"),
    ("huge page", "GET", "/api/handles?prefix=88.101&page=999999999999999999999999&pageSize=10", None, {}, 400, 4, "larger than"),
    ("mint under a prefix record", "PUT", "/api/handles/88.101?mintNewSuffix=true", b"[]", JSON, 400, 4, "mint under a prefix"),
]


@pytest.mark.parametrize("name, method, path, body, headers, status, code, fragment", CASES, ids=[c[0] for c in CASES])
async def test_refused_and_nothing_written(seeded, name, method, path, body, headers, status, code, fragment):
    node = seeded
    before = await snapshot(node.dsn)
    r = await node.session.request(method, node.url(path), data=body, headers={**node.auth(), **headers},
                                   skip_auto_headers=["Content-Type"])
    answer = await r.json()
    assert r.status == status, answer
    assert answer["responseCode"] == code
    assert fragment in answer.get("message", ""), answer
    assert await snapshot(node.dsn) == before


async def test_body_over_the_limit_is_413_json(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, max_body_bytes=4096) as node:
        await node.provision("88.101")
        before = await snapshot(dsn)
        big = [{"index": i, "type": "X", "data": "y" * 100} for i in range(1, 100)]
        r = await node.session.put(node.url("/api/handles/88.101/BIG"), json=big, headers=node.auth())
        assert r.status == 413
        answer = await r.json()
        assert answer["responseCode"] == 4 and "limit of 4096 bytes" in answer["message"]
        assert await snapshot(dsn) == before


async def test_chunked_body_over_the_limit_is_413_json(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, max_body_bytes=4096) as node:
        await node.provision("88.101")
        before = await snapshot(dsn)

        async def chunks():
            for _ in range(10):
                yield b" " * 1000

        r = await node.session.put(node.url("/api/handles/88.101/BIG"), data=chunks(), headers={**node.auth(), **JSON})
        assert r.status == 413 and (await r.json())["responseCode"] == 4
        assert await snapshot(dsn) == before


async def test_raw_non_ascii_bytes_in_the_request_line_are_refused(seeded):
    """Not valid HTTP: the parser answers 400 before the API sees it (percent-encoded bytes get JSON, above)."""
    node = seeded
    before = await snapshot(node.dsn)
    reader, writer = await asyncio.open_connection("127.0.0.1", node.settings.listen.port)
    writer.write(b"PUT /api/handles/88.101/\xff\xfe HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]")
    data = await reader.read()
    writer.close()
    assert data.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    assert b"Traceback" not in data
    assert await snapshot(node.dsn) == before
