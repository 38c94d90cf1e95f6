"""``/api/sync/changes``, ``/api/sync/snapshot`` and ``/api/sync/status`` of a running node: who may read
them, what bad requests get, long-polls woken by writes, and snapshots as streamed NDJSON."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib

import aiohttp
import orjson
import pytest

from registry.pg import db, feed
from tests.nodes import InProcessNode, basic

PUT = [{"index": 1, "type": "URL", "data": "https://example.com/x"}]


async def changes(node, params: dict, headers: dict | None = None) -> tuple[int, dict]:
    async with node.session.get(node.url("/api/sync/changes"), params=params, headers=node.auth() if headers is None else headers) as r:
        return r.status, await r.json()


async def test_reading_the_feed_needs_an_admin_of_every_prefix_asked_for(node):
    other = await node.provision("88.102")
    status, body = await changes(node, {"prefix": "88.101"}, headers={})
    assert (status, body["responseCode"]) == (401, 402) and "credentials" in body["message"]
    status, body = await changes(node, {"prefix": "88.101"}, headers=basic(str(other.identity), other.secret))
    assert (status, body["responseCode"]) == (403, 401)
    assert body["message"] == (f"{other.identity} lacks READ_VALUE+LIST_HANDLES on 0.NA/88.101, which syncing 88.101 needs")
    status, body = await changes(node, {"prefix": "88.101"}, headers=basic(str(other.identity), "wrong"))
    assert (status, body["responseCode"]) == (401, 402)
    status, body = await changes(node, {})  # every prefix: replication identities and server admins only
    assert (status, body["responseCode"]) == (403, 401) and "?prefix=" in body["message"]
    status, body = await changes(node, {"prefix": "88.101"})
    assert (status, body["responseCode"]) == (200, 1)
    status, body = await changes(node, {"prefix": "77.7"})
    assert (status, body["responseCode"]) == (400, 301) and "neither homed nor mirrored here" in body["message"]


async def test_a_replication_identity_reads_every_prefix(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, sync_identities="300:88.102/ADMIN") as running:
        await running.provision("88.101")
        replicator = await running.provision("88.102")
        status, body = await changes(running, {}, headers=basic(str(replicator.identity), replicator.secret))
        assert status == 200 and {c["handle"] for c in body["changes"]} >= {"0.NA/88.101", "88.101/ADMIN"}


@pytest.mark.parametrize(("params", "message"), [
    ({"after": "-1"}, "after must be between 0 and"),
    ({"after": "x"}, "after must be an integer, not 'x'"),
    ({"limit": "0"}, "limit must be between 1 and 10000"),
    ({"limit": "10001"}, "limit must be between 1 and 10000"),
    ({"wait": "61"}, "wait must be between 0 and 60"),
    ({"wait": "nan"}, "wait must be between 0 and 60"),
    ({"prefix": "88.101/X"}, "prefix"),
])
async def test_bad_feed_parameters_get_400_and_say_which(node, params, message):
    status, body = await changes(node, {"prefix": "88.101", **params})
    assert (status, body["responseCode"]) == (400, 4) or (status, body["responseCode"]) == (400, 102)
    assert message in body["message"]


async def test_a_long_poll_returns_as_soon_as_a_change_is_committed(node):
    start = (await changes(node, {"prefix": "88.101"}))[1]["next"]

    async def poll():  # far longer than the write takes: a poll that was not woken would fail the test by timing out
        async with node.session.get(node.url("/api/sync/changes"), params={"prefix": "88.101", "after": str(start), "wait": "60"},
                                    headers=node.auth(), timeout=aiohttp.ClientTimeout(total=30)) as r:
            return await r.json()

    waiting = asyncio.create_task(poll())
    await asyncio.sleep(0.2)  # let the poll start waiting (the test holds without it)
    async with node.session.put(node.url("/api/handles/88.101/WOKEN"), json=PUT, headers=node.auth()) as r:
        assert r.status == 201
    body = await waiting
    assert [(c["handle"], c["op"]) for c in body["changes"]] == [("88.101/WOKEN", "upsert")]
    assert body["changes"][0]["record"]["handle"] == "88.101/WOKEN" and body["more"] is False


async def test_the_feed_past_the_horizon_answers_410(node, dsn):
    for n in range(3):
        async with node.session.put(node.url(f"/api/handles/88.101/P{n}"), json=PUT, headers=node.auth()) as r:
            assert r.status == 201
    async with db.connection(dsn) as conn:
        from datetime import datetime, timedelta, timezone

        await feed.prune(conn, datetime.now(timezone.utc) + timedelta(days=1), 1000)
    status, body = await changes(node, {"prefix": "88.101", "after": "0"})
    assert (status, body["responseCode"]) == (410, 300)
    assert "older than this node's change-log horizon" in body["message"] and "fresh snapshot" in body["message"]


async def snapshot_lines(node, params: dict, encoding: str = "gzip") -> tuple[aiohttp.ClientResponse, list[bytes]]:
    async with node.session.get(node.url("/api/sync/snapshot"), params=params, auto_decompress=False,
                                headers={**node.auth(), "Accept-Encoding": encoding}) as r:
        data = await r.read()
    if r.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return r, data.splitlines(keepends=True)


async def test_a_snapshot_streams_every_record_with_chunk_digests_and_its_cursor(node, dsn):
    for n in range(5):
        async with node.session.put(node.url(f"/api/handles/88.101/S{n}"), json=PUT, headers=node.auth()) as r:
            assert r.status == 201
    response, lines = await snapshot_lines(node, {"prefix": "88.101", "chunk": "3"})
    assert response.status == 200 and response.headers["Content-Type"] == "application/x-ndjson"
    assert response.headers["Content-Encoding"] == "gzip" and response.headers["Transfer-Encoding"] == "chunked"
    header, *body, end = [orjson.loads(line) for line in lines]
    async with db.connection(dsn) as conn:
        assert header["snapshot"]["cursor"] == await feed.head(conn)
        stored = {r["spelled"]: bytes(r["vals"]) for r in await conn.fetch("SELECT spelled, vals FROM handles")}
    records = {item["handle"]: base64.b64decode(item["values"]) for item in body if "handle" in item}
    assert records == stored  # every value as stored, byte for byte
    chunks = [item["chunk"] for item in body if "chunk" in item]
    assert [c["records"] for c in chunks] == [3, 3, 1]  # the prefix record first, then the handles, in chunks of 3
    start = 1
    for chunk, position in zip(chunks, [i for i, item in enumerate(body) if "chunk" in item]):
        covered = b"".join(lines[start + position - chunk["records"]:start + position])
        assert chunk["sha256"] == hashlib.sha256(covered).hexdigest() and chunk["seal"].count(".") == 2
    assert end == {"end": {"records": 7, "cursor": header["snapshot"]["cursor"]}}
    plain, again = await snapshot_lines(node, {"prefix": "88.101"}, encoding="identity")
    assert "Content-Encoding" not in plain.headers and len(again) == 1 + 7 + 1 + 1  # header, records, one chunk line, end


async def test_a_snapshot_needs_a_prefix_and_the_same_rights_as_the_feed(node):
    async with node.session.get(node.url("/api/sync/snapshot"), headers=node.auth()) as r:
        assert (r.status, (await r.json())["responseCode"]) == (400, 4)
    async with node.session.get(node.url("/api/sync/snapshot"), params={"prefix": "88.101"}) as r:
        assert (r.status, (await r.json())["responseCode"]) == (401, 402)


async def test_the_status_names_the_feed_and_no_mirrors(node):
    async with node.session.get(node.url("/api/sync/status")) as r:
        body = await r.json()
    assert body["responseCode"] == 1 and body["mirrors"] == []
    assert body["feed"]["horizon"] == 0 and body["feed"]["retentionSeconds"] == 7 * 86400 and body["feed"]["head"] > 0


async def test_a_process_streams_two_snapshots_at_once_and_asks_the_next_to_come_back(node):
    slots = [node.node.replication.snapshots.reserve() for _ in range(2)]
    for slot in slots:
        await slot.__aenter__()
    try:
        async with node.session.get(node.url("/api/sync/snapshot"), params={"prefix": "88.101"}, headers=node.auth()) as r:
            body = await r.json()
        assert (r.status, body["responseCode"], r.headers["Retry-After"]) == (503, 3, "2")
        assert "try again shortly" in body["message"]
        assert node.node.health.available  # not taken for a database outage
    finally:
        for slot in slots:
            await slot.__aexit__(None, None, None)
    lines = (await snapshot_lines(node, {"prefix": "88.101"}))[1]
    assert orjson.loads(lines[-1])["end"]["records"] == 2
