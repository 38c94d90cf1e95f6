"""The command line as a new operator meets it: every mistake gets one clear line and an exit code,
and nothing is started or written before the settings are known to work."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from importlib.metadata import version

from registry.errors import ResponseCode
from resolver.cli.response_codes import SENTENCES, explain
from tests.conftest import with_database
from tests.nodes import idres


async def run(*args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(idres, *args)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


async def test_a_database_that_does_not_exist_is_one_line(pg_root):
    wrong = with_database(pg_root, "no_such_database")
    for command in (("migrate",), ("prefix", "list"), ("admin", "create", "--prefix", "88.1")):
        result = await run(*command, "--dsn", wrong)
        assert result.returncode == 4, result.stderr
        assert one_line(result) == 'idres: PostgreSQL refused the connection: database "no_such_database" does not exist; check the DSN'


async def test_a_role_that_does_not_exist_is_one_line(pg_root):
    wrong = pg_root.replace("postgres:@", "nobody:@", 1)
    assert wrong != pg_root
    result = await run("migrate", "--dsn", wrong)
    assert result.returncode == 4
    assert 'role "nobody" does not exist' in one_line(result)


async def test_a_refused_database_port_names_the_cause():
    result = await run("prefix", "list", "--dsn", "postgresql://postgres@127.0.0.1:9/postgres")
    assert result.returncode == 3
    assert one_line(result).startswith("idres: the database cannot be reached: ConnectionRefusedError")


async def test_put_without_credentials_says_what_to_do(node):
    for url, status in ((node.http, 403), (node.https, 401)):
        result = await run("put", "88.101/X", "--value", "1", "URL", "https://example.com", "--url", url, "--insecure")
        assert result.returncode == 1
        line = one_line(result)
        assert line.startswith(f"idres: HTTP {status}, responseCode 402: the node needs credentials for this")
        assert "--user" in line and "--password" in line and "https://" in line


async def test_credentials_over_plain_http_are_named(node):
    admin = node.admins["88.101"]
    cli = ("--user", str(admin.identity), "--password", admin.secret)
    put = await run("put", "88.101/X", "--value", "1", "URL", "https://example.com", "--url", node.http, *cli)
    assert put.returncode == 1
    assert "the node accepts credentials only over HTTPS: give its https:// URL" in one_line(put)
    get = await run("get", "88.101/ADMIN", "--url", node.http, *cli)
    assert get.returncode == 0
    assert "--allow-http-auth" in one_line(get) and "public values" in get.stderr
    assert "HS_SECKEY" not in get.stdout  # the anonymous view, as the warning says
    secure = await run("get", "88.101/ADMIN", "--url", node.https, "--insecure", *cli)
    assert secure.returncode == 0 and secure.stderr == "" and "HS_SECKEY" in secure.stdout


async def test_wrong_credentials_are_told_apart_from_missing_ones(node):
    admin = node.admins["88.101"]
    result = await run("put", "88.101/X", "--value", "1", "URL", "u", "--url", node.https, "--insecure",
                       "--user", str(admin.identity), "--password", "wrong")
    assert result.returncode == 1
    assert "the node did not accept the credentials: check --user and --password" in one_line(result)


async def test_refusals_say_what_the_code_means(node):
    result = await run("get", "88.101/NOPE", "--url", node.http)
    assert (result.returncode, one_line(result)) == (1, "idres: HTTP 404, responseCode 100: no such handle")
    result = await run("get", "77.1/X", "--url", node.http, "--json")
    assert json.loads(result.stdout)["responseCode"] == 301
    assert "this node does not serve that prefix" in one_line(result)


def test_every_response_code_has_a_sentence():
    assert set(SENTENCES) == set(ResponseCode)
    assert explain(418, {"responseCode": 9999}) == "HTTP 418, responseCode 9999: the node answered with responseCode 9999"
    assert explain(502, {}) == "HTTP 502: the node's answer has no responseCode"


async def test_version():
    result = await run("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"idres {version('idres')}")


async def test_json_and_log_level_before_the_command(dsn):
    for args in (("--json", "prefix", "list"), ("prefix", "list", "--json"), ("--json", "--log-level", "error", "prefix", "list")):
        result = await run(*args, "--dsn", dsn)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"prefixes": []}
    failed = await run("--json", "prefix", "list", "--dsn", "postgresql://postgres@127.0.0.1:9/postgres")
    assert json.loads(failed.stdout)["exitCode"] == 3


async def test_a_taken_port_is_found_before_a_database_is_made(tmp_path):
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for ports in (("--port", port, "--tls-port", "off"), ("--port", "0", "--tls-port", port)):
            result = await run("serve", "--data-dir", str(data), *ports)
            assert result.returncode == 4
            assert one_line(result) == f"idres: cannot listen on 127.0.0.1:{port}: Address already in use"
            assert not data.exists()  # no embedded PostgreSQL was created, nor anything else written


async def test_missing_tls_files_and_trust_root_are_found_before_a_database_is_made(tmp_path):
    data = tmp_path / "data"
    result = await run("serve", "--data-dir", str(data), "--port", "0", "--tls-port", "0",
                       "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    assert result.returncode == 4 and one_line(result) == f"idres: TLS file {tmp_path / 'cert.pem'} does not exist"
    result = await run("serve", "--data-dir", str(data), "--port", "0", "--tls-port", "0", "--trust-root", str(tmp_path / "root.pem"))
    assert result.returncode == 4 and "cannot read the trust root" in one_line(result)
    assert not data.exists()
