"""The front door of a node on the network: malformed, slow and idle connections, stalled bodies, access logs."""

from __future__ import annotations

import asyncio
import json
import resource
import socket

import aiohttp
import pytest

from tests.nodes import ServeProcess, basic, idres

DEADLINE = 30.0


@pytest.fixture
async def door(dsn, tmp_path):
    """A node with short deadlines, 88.101 homed with an admin, one record."""
    await asyncio.to_thread(idres, "prefix", "home", "88.101", "--dsn", dsn, "--data-dir", str(tmp_path))
    made = await asyncio.to_thread(idres, "admin", "create", "--prefix", "88.101", "--dsn", dsn, "--data-dir", str(tmp_path), "--json")
    admin = json.loads(made.stdout.strip().splitlines()[-1])
    node = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "off", "--workers", "1",
                        "--allow-http-auth", env={"IDRES_HEADER_TIMEOUT": "2", "IDRES_BODY_TIMEOUT": "1",
                                                  "IDRES_ACCESS_LOG": "true", "IDRES_ACCESS_LOG_FORMAT": "json"})
    await asyncio.to_thread(node.start)
    auth = basic(admin["user"], admin["password"])
    async with aiohttp.ClientSession() as s:
        async with s.put(node.http + "/api/handles/88.101/R", json=[{"index": 1, "type": "URL", "data": "https://r"}], headers=auth) as r:
            assert r.status == 201
    yield node, auth
    node.stop()


def address(node: ServeProcess) -> tuple[str, int]:
    host, port = node.http.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def raw_exchange(node: ServeProcess, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*address(node))
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), DEADLINE)
    writer.close()
    return answer


def json_of(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_what_the_parser_refuses_is_answered_with_json(door):
    node, _ = door
    for request, said in (
        (b"GET /api/handles/88.101/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", "Invalid char in url path"),
        (b"NOT HTTP AT ALL\r\n\r\n", "not valid HTTP"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "too long"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", "too long"),
    ):
        status, body = json_of(await raw_exchange(node, request))
        assert (status, body["responseCode"]) == (400, 4), body
        assert said in body["message"], body


async def test_slow_connections_do_not_keep_a_client_from_being_answered(door):
    node, _ = door
    slow = []
    for _ in range(500):  # each sends the start of a request and then nothing
        reader, writer = await asyncio.open_connection(*address(node))
        writer.write(b"GET /api/handles/88.101/R HTTP/1.1\r\nHost: x\r\n")
        slow.append((reader, writer))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        async with s.get(node.http + "/api/handles/88.101/R") as r:
            assert r.status == 200
    # and the header deadline closes them: each reads EOF without an answer
    closed = await asyncio.wait_for(asyncio.gather(*(reader.read() for reader, _ in slow)), DEADLINE)
    assert all(data == b"" for data in closed)
    for _, writer in slow:
        writer.close()


async def test_a_stalled_body_is_refused_once_its_deadline_passes(door):
    node, auth = door
    head = (b"PUT /api/handles/88.101/STALL HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + auth["Authorization"].encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[{\"in\r\n")
    status, body = json_of(await raw_exchange(node, head))
    assert (status, body["responseCode"]) == (408, 4) and "did not arrive within 1 s" in body["message"]
    batch = (b"POST /api/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
             b"Authorization: " + auth["Authorization"].encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"31\r\n" + b'{"op":"create","handle":"88.101/STALL","values":[' + b"\r\n")
    status, body = json_of(await raw_exchange(node, batch))  # a long body may take its time, not stall
    assert (status, body["responseCode"]) == (408, 4) and "nothing arrived for 1 s" in body["message"]
    async with aiohttp.ClientSession() as s:
        async with s.get(node.http + "/api/handles/88.101/STALL") as r:
            assert r.status == 404  # nothing was written


async def test_access_log_lines_are_json_with_the_request_id(door):
    node, _ = door
    async with aiohttp.ClientSession() as s:
        async with s.get(node.http + "/api/handles/88.101/R", headers={"X-Request-Id": "trace-42"}) as r:
            assert r.status == 200
    err = node.stop()
    lines = [json.loads(line.split("idres.access: ", 1)[1]) for line in err.splitlines() if "idres.access: " in line]
    mine = [line for line in lines if line["requestId"] == "trace-42"]
    assert mine and mine[0]["status"] == 200 and mine[0]["path"] == "/api/handles/88.101/R" and mine[0]["method"] == "GET"
    assert all(line["requestId"] for line in lines)


async def test_thousands_of_idle_connections_under_a_small_descriptor_limit(dsn, tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4000:
        pytest.fail(f"this test opens 3,000 connections: the descriptor limit {hard} is too low for the test itself")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4000), hard))
    await asyncio.to_thread(idres, "prefix", "home", "88.101", "--dsn", dsn, "--data-dir", str(tmp_path))
    node = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "off", "--workers", "1",
                        descriptors=1024)
    await asyncio.to_thread(node.start)
    idle: list[socket.socket] = []
    try:
        for _ in range(3000):
            idle.append(socket.create_connection(address(node)))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
            async with s.get(node.http + "/api/handles/88.101/NOPE") as r:
                assert (r.status, (await r.json())["responseCode"]) == (404, 100)
    finally:
        for sock in idle:
            sock.close()
        err = node.stop()
    assert "closed" in err and "to make room" in err  # the operator is told, once in a while, not per connection
    assert err.count("to make room") < 20
