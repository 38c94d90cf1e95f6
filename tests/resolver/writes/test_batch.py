"""POST /api/batch against a real node: results per item in input order, bad items alone refused,
idempotent replays, and writers of one handle that queue instead of failing."""

from __future__ import annotations

import asyncio

import orjson

from registry.pg import db
from tests.nodes import InProcessNode, basic

URL = "https://example.com/p/"


def item(handle: str, n: int = 1, op: str = "create", **extra) -> dict:
    values = [{"index": 1, "type": "URL", "data": URL + str(n)}, {"index": 2, "type": "SERIAL", "data": f"SN{n}"},
              {"index": 3, "type": "MODEL", "data": "WM-7030"}]
    return {"op": op, "handle": handle, "values": values, **extra}


def ndjson(items: list) -> bytes:
    return b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in items)


async def batch(node, body: bytes, headers: dict | None = None, auth: dict | None = None) -> tuple[int, list[dict]]:
    r = await node.session.post(node.url("/api/batch"), data=body, headers={**(node.auth() if auth is None else auth), **(headers or {})})
    text = await r.text()
    lines = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    return r.status, lines


async def log_of(dsn: str) -> list[tuple[str, int]]:
    async with db.connection(dsn) as conn:
        return [tuple(r) for r in await conn.fetch("SELECT handle, op FROM changes ORDER BY seq")]


async def test_results_stream_in_input_order_and_bad_items_fail_alone(node, dsn):
    await node.provision("88.102")  # another prefix, whose admin is not the caller
    oversized = {"op": "create", "handle": "88.101/BIG", "values": [{"index": 1, "type": "URL", "data": "x" * 70_000}]}
    body = ndjson([
        item("88.101/SN-1"),
        item("88.101/", 2),                                                   # malformed handle
        {"op": "create", "handle": "88.101/SN-3", "values": [{"index": 1, "type": "URL", "data": {"format": "hex", "value": "zz"}}]},
        item("88.102/SN-4"),                                                  # a prefix the caller may not write
        oversized,
        b"{not json",
        item("88.101/SN-7", 7),
        item("88.101/SN-\u200b8", 8),                                        # refused by the identifier policy
        {"op": "create", "handle": "88.101/SN-9", "values": [{"index": 1, "type": "URL", "data": "x", "ttl": -5}]},
    ])
    status, lines = await batch(node, body)
    assert status == 200
    results, summary = lines[:-1], lines[-1]
    assert [r["index"] for r in results] == list(range(9))
    assert [r["responseCode"] for r in results] == [1, 102, 202, 401, 4, 4, 1, 102, 202]
    assert "identifier policy" in results[7]["message"]
    assert results[0] == {"index": 0, "responseCode": 1, "message": "created", "handle": "88.101/SN-1"}
    assert "limit" in results[4]["message"] and results[3]["handle"] == "88.102/SN-4"
    assert summary == {"done": True, "items": 9, "failed": 7}
    r = await node.session.get(node.url("/api/handles/88.101/SN-7", secure=False))
    body = await r.json()
    assert [v["type"] for v in body["values"]][:3] == ["URL", "SERIAL", "MODEL"]
    assert any(v["type"] == "HS_SIGNATURE" for v in body["values"])  # signed by the node, as single writes are
    for absent in ("88.102/SN-4", "88.101/SN-3", "88.101/BIG", "88.101/SN-\u200b8", "88.101/SN-9"):
        assert (await node.session.get(node.url(f"/api/handles/{absent}", secure=False))).status == 404


async def test_every_kind_of_item_from_a_json_array(node):
    body = orjson.dumps([
        item("88.101/A"), item("88.101/B"),
        {"op": "add", "handle": "88.101/A", "values": [{"index": 9, "type": "NOTE", "data": "added"}]},
        {"op": "remove", "handle": "88.101/A", "indexes": [3]},
        {"op": "replace", "handle": "88.101/B", "values": [{"index": 1, "type": "URL", "data": "https://new"}]},
        {"op": "delete", "handle": "88.101/B"},
        {"op": "remove", "handle": "88.101/A", "indexes": [77]},
        {"op": "frobnicate", "handle": "88.101/A"},
    ])
    status, lines = await batch(node, body, {"Content-Type": "application/json"})
    assert status == 200
    assert [(r["responseCode"], r["message"]) for r in lines[:-1]] == [
        (1, "created"), (1, "created"), (1, "values added"), (1, "values removed"), (1, "replaced"), (1, "deleted"),
        (200, "no value at index 77"), (4, "unknown op 'frobnicate': use one of create, replace, add, remove, delete")]
    a = await (await node.session.get(node.url("/api/handles/88.101/A", secure=False))).json()
    assert {v["index"] for v in a["values"] if v["type"] != "HS_SIGNATURE"} == {1, 2, 9}
    assert (await node.session.get(node.url("/api/handles/88.101/B", secure=False))).status == 404


async def test_identical_re_creates_succeed_unchanged_and_different_ones_fail(node, dsn):
    body = ndjson([item(f"88.101/R-{n}", n) for n in range(5)])
    assert [r["message"] for r in (await batch(node, body))[1][:-1]] == ["created"] * 5
    before = await log_of(dsn)
    status, lines = await batch(node, body)
    assert [(r["responseCode"], r["message"]) for r in lines[:-1]] == [(1, "unchanged")] * 5
    assert await log_of(dsn) == before  # nothing written the second time
    _, lines = await batch(node, ndjson([item("88.101/R-0", 99)]))
    assert lines[0]["responseCode"] == 101


async def test_a_batch_replayed_after_a_timeout_applies_each_item_once(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, batch_chunk_size=3) as node:
        await node.provision("88.101")
        items = [item(f"88.101/T-{n:02d}", n) for n in range(12)]
        body, key = ndjson(items), {"Idempotency-Key": "factory-line-7/2026-11-29/0001"}
        # the client gives up after the first results (a gateway timeout, say)
        r = await node.session.post(node.url("/api/batch"), data=body, headers={**node.auth(), **key})
        first = await r.content.readline()
        r.close()
        assert orjson.loads(first)["responseCode"] == 1
        status, lines = await batch(node, body, key)
        assert status == 200 and lines[-1] == {"done": True, "items": 12, "failed": 0}
        assert [r["responseCode"] for r in lines[:-1]] == [1] * 12
        assert [r["message"] for r in lines[:-1]] == ["created"] * 12  # the first run's results, replayed
        creates = [h for h, op in await log_of(dsn) if h.startswith("88.101/T-")]
        assert sorted(creates) == [f"88.101/T-{n:02d}" for n in range(12)]  # each once
        again = await batch(node, body, key)
        assert again == (status, lines)
        assert len([h for h, _ in await log_of(dsn) if h.startswith("88.101/T-")]) == 12
        status, lines = await batch(node, ndjson(items[:2]), key)
        assert status == 422 and lines[0]["responseCode"] == 4 and "Idempotency-Key" in lines[0]["message"]


async def test_limits_on_items_and_credentials(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, batch_max_items=3) as node:
        await node.provision("88.101")
        status, lines = await batch(node, ndjson([item(f"88.101/L-{n}") for n in range(4)]))
        assert status == 413 and "limit is 3" in lines[0]["message"]
        status, lines = await batch(node, ndjson([item("88.101/L-0")]), auth={})
        assert status == 401 and lines[0]["responseCode"] == 402
        status, lines = await batch(node, b"\n\n")
        assert status == 400


async def test_sixteen_writers_adding_values_to_one_handle_all_succeed(dsn, tmp_path):
    """Two serving processes' worth of writers (two nodes on one database), 16 at once on one handle."""
    async with InProcessNode(dsn, tmp_path) as first:
        admin = await first.provision("88.101")
        async with InProcessNode(dsn, tmp_path) as second:
            headers = basic(str(admin.identity), admin.secret)
            r = await first.session.put(first.url("/api/handles/88.101/HOT"), json=[{"index": 1, "type": "URL", "data": "x"}],
                                        headers=headers)
            assert r.status == 201

            async def add(n: int) -> int:
                node = (first, second)[n % 2]
                value = [{"index": 100 + n, "type": "NOTE", "data": f"writer {n}"}]
                r = await node.session.put(node.url("/api/handles/88.101/HOT?index=various"), json=value, headers=headers)
                return r.status

            statuses = await asyncio.gather(*(add(n) for n in range(16)))
            assert statuses == [201] * 16
            body = await (await first.session.get(first.url("/api/handles/88.101/HOT", secure=False))).json()
            assert {v["index"] for v in body["values"] if v["type"] == "NOTE"} == {100 + n for n in range(16)}


async def test_writes_over_the_identity_limit_get_429_with_retry_after(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, rate_writes_per_identity=5, rate_window=86400) as node:
        await node.provision("88.101")
        statuses = []
        for n in range(4):
            r = await node.session.put(node.url(f"/api/handles/88.101/W-{n}"), json=[{"index": 1, "type": "URL", "data": "x"}],
                                       headers=node.auth())
            statuses.append(r.status)
        assert statuses == [201] * 4
        status, lines = await batch(node, ndjson([item("88.101/W-4"), item("88.101/W-5")]))  # 4 + 2 > 5: refused whole
        assert status == 429 and lines[0]["responseCode"] == 3 and "at most 5" in lines[0]["message"]
        r = await node.session.put(node.url("/api/handles/88.101/W-4"), json=[{"index": 1, "type": "URL", "data": "x"}],
                                   headers=node.auth())
        assert r.status == 201
        r = await node.session.put(node.url("/api/handles/88.101/W-5"), json=[{"index": 1, "type": "URL", "data": "x"}],
                                   headers=node.auth())
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        assert (await node.session.get(node.url("/api/handles/88.101/W-5", secure=False))).status == 404
