"""The ``idres`` command line, run as operators run it: a subprocess, exit codes, --json output."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import aiohttp
import pytest

from registry.pg import db
from registry.pg.migrate import latest_version
from tests.nodes import ServeProcess, idres


async def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(idres, *args, stdin=stdin)


def output(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


async def test_migrate_creates_then_reports_up_to_date(empty_dsn):
    first = await run("migrate", "--dsn", empty_dsn, "--json")
    assert first.returncode == 0, first.stderr
    assert output(first)["applied"][0].startswith("0001_")
    second = await run("migrate", "--dsn", empty_dsn)
    assert (second.returncode, second.stdout.strip()) == (0, "the schema is up to date")


async def test_serve_refuses_a_database_without_schema(empty_dsn, tmp_path):
    result = await run("serve", "--dsn", empty_dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "off")
    assert result.returncode == 4
    assert "run `idres migrate`" in result.stderr


async def test_serve_refuses_a_schema_that_is_behind(fresh_dsn, tmp_path):
    async with db.connection(fresh_dsn) as conn:
        await conn.execute("INSERT INTO idres.schema_migrations (version, name) VALUES (0, 'x')")
        await conn.execute("DELETE FROM idres.schema_migrations WHERE version = $1", latest_version())
    if latest_version() == 1:
        pytest.skip("with a single migration, 'behind' is 'no schema' (tested above)")
    result = await run("serve", "--dsn", fresh_dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "off")
    assert result.returncode == 4 and "run `idres migrate`" in result.stderr


async def test_serve_refuses_a_schema_that_is_ahead(fresh_dsn, tmp_path):
    async with db.connection(fresh_dsn) as conn:
        await conn.execute("INSERT INTO idres.schema_migrations (version, name) VALUES (9999, 'future')")
    result = await run("serve", "--dsn", fresh_dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "off")
    assert result.returncode == 4
    assert "9999" in result.stderr and "upgrade idres" in result.stderr


async def test_invalid_settings_name_the_variable(tmp_path):
    result = await run("serve", "--port", "99999", "--data-dir", str(tmp_path))
    assert result.returncode == 4 and "IDRES_PORT" in result.stderr


async def test_prefix_and_admin_commands(dsn):
    result = await run("admin", "create", "--prefix", "88.500", "--dsn", dsn)
    assert result.returncode == 1 and "idres prefix home 88.500" in result.stderr
    result = await run("prefix", "home", "88.500", "--dsn", dsn, "--json")
    assert result.returncode == 0 and output(result) == {"prefix": "88.500", "homed": True, "changed": True}
    result = await run("prefix", "home", "0.NA/88.500", "--dsn", dsn)
    assert result.returncode == 0 and "already homed" in result.stdout
    result = await run("admin", "create", "--prefix", "88.500", "--dsn", dsn, "--json")
    admin = output(result)
    assert result.returncode == 0 and admin["user"] == "300:88.500/ADMIN" and len(admin["password"]) >= 32
    result = await run("admin", "create", "--prefix", "88.500", "--dsn", dsn)
    assert result.returncode == 1 and "already exists" in result.stderr
    result = await run("prefix", "list", "--dsn", dsn, "--json")
    assert output(result) == {"prefixes": ["88.500"]}
    result = await run("prefix", "unhome", "88.500", "--dsn", dsn)
    assert result.returncode == 0
    result = await run("prefix", "unhome", "88.500", "--dsn", dsn)
    assert result.returncode == 1 and "not homed" in result.stderr
    result = await run("prefix", "home", "88/5", "--dsn", dsn)
    assert result.returncode == 2 and "must not contain '/'" in result.stderr
    result = await run("prefix", "home", "88.5\u200b00", "--dsn", dsn)  # the identifier policy, as over HTTP
    assert result.returncode == 2 and "zero-width" in result.stderr
    assert output(await run("prefix", "list", "--dsn", dsn, "--json")) == {"prefixes": []}


async def test_operator_commands_while_an_embedded_node_serves(tmp_path):
    """`idres prefix home` and `idres admin create` attach to the running node's embedded database."""
    data = str(tmp_path / "data")
    node = ServeProcess("--data-dir", data, "--port", "0", "--tls-port", "0", "--workers", "1")
    await asyncio.to_thread(node.start)
    try:
        assert (await run("prefix", "home", "88.600", "--data-dir", data)).returncode == 0
        admin = output(await run("admin", "create", "--prefix", "88.600", "--data-dir", data, "--json"))
        cli = ("--url", node.https, "--user", admin["user"], "--password", admin["password"], "--ca-file", str(tmp_path / "data" / "tls" / "cert.pem"))
        deadline = time.monotonic() + 30
        while True:  # the node learns of the new prefix from its change log
            put = await run("put", "88.600/SN-1", "--value", "1", "URL", "https://example.com/1", "--json", *cli)
            if put.returncode == 0 or time.monotonic() > deadline:
                break
        assert put.returncode == 0, put.stdout + put.stderr
        assert output(put) == {"responseCode": 1, "handle": "88.600/SN-1"}
        got = await run("get", "88.600/SN-1", "--url", node.http)
        assert got.returncode == 0 and "https://example.com/1" in got.stdout
        assert (await run("put", "88.600/SN-1", "--no-overwrite", "--value", "1", "URL", "x", *cli)).returncode == 1
        assert (await run("delete", "88.600/SN-1", *cli)).returncode == 0
        missing = await run("get", "88.600/SN-1", "--url", node.http, "--json")
        assert missing.returncode == 1 and output(missing)["responseCode"] == 100
    finally:
        err = await asyncio.to_thread(node.stop)
    assert node.proc.returncode == 0, err
    # the node stopped the embedded PostgreSQL it started
    assert "postmaster.pid" not in {p.name for p in (tmp_path / "data" / "postgres").iterdir()}


async def test_credentials_are_not_sent_over_plain_http_to_other_hosts():
    result = await run("put", "88.1/x", "--value", "1", "URL", "u", "--url", "http://192.0.2.1:8000",
                       "--user", "300:88.1/ADMIN", "--password", "pw")
    assert result.returncode == 4 and "HTTPS only" in result.stderr


async def test_client_commands_report_unreachable_nodes_and_bad_input(tmp_path):
    result = await run("get", "88.1/x", "--url", "http://127.0.0.1:9")
    assert result.returncode == 3 and "cannot reach the node" in result.stderr
    result = await run("put", "88.1/x", "--url", "http://127.0.0.1:9")
    assert result.returncode == 2 and "--value" in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = await run("put", "88.1/x", "--file", str(bad), "--url", "http://127.0.0.1:9")
    assert result.returncode == 2 and "not valid JSON" in result.stderr


async def test_put_values_from_stdin(dsn, tmp_path):
    node = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "off", "--workers", "1",
                        "--allow-http-auth")
    await run("prefix", "home", "88.700", "--dsn", dsn, "--data-dir", str(tmp_path))
    admin = output(await run("admin", "create", "--prefix", "88.700", "--dsn", dsn, "--data-dir", str(tmp_path), "--json"))
    await asyncio.to_thread(node.start)
    try:
        values = json.dumps([{"index": 1, "type": "URL", "data": "https://example.com/s"}, {"index": 2, "type": "EMAIL", "data": "a@b"}])
        put = await run("put", "88.700/STDIN", "--file", "-", "--url", node.http, "--user", admin["user"], "--password", admin["password"],
                        stdin=values)
        assert put.returncode == 0, put.stderr
        async with aiohttp.ClientSession() as s:
            body = await (await s.get(node.http + "/api/handles/88.700/STDIN")).json()
        assert [v["type"] for v in body["values"]] == ["URL", "EMAIL", "HS_SIGNATURE"]
    finally:
        await asyncio.to_thread(node.stop)
