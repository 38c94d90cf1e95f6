"""``idres import``: CSV and NDJSON files through a running node's batch API and straight into the
database; bad lines reported by number; resuming after the node is killed; importers that overlap."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from registry.jws import b64url
from registry.pg import db
from registry.pg.store import Store
from resolver.config import Settings
from resolver.keys.site import SiteDescription
from resolver.ops.provisioning import create_prefix_admin, home_prefix, node_keyring
from tests.nodes import ServeProcess, command_env, idres

PREFIX = "88.101"


def write_csv(path, numbers, bad: dict[int, str] | None = None):
    lines = ["suffix,URL,SERIAL,MODEL"]
    for n in numbers:
        lines.append((bad or {}).get(n, f"SN-{n:05d},https://example.com/p/{n},S{n},WM-7030"))
    path.write_text("\n".join(lines) + "\n")
    return path


def start_import(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "resolver", "import", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=command_env())


async def keys_under(dsn: str, like: str = "88.101/SN-%") -> list[str]:
    async with db.connection(dsn) as conn:
        return [r["handle"] for r in await conn.fetch("SELECT handle FROM handles WHERE handle LIKE $1 ORDER BY handle", like)]


async def creates_logged(dsn: str) -> list[str]:
    async with db.connection(dsn) as conn:
        return [r["handle"] for r in await conn.fetch("SELECT handle FROM changes WHERE op = 1 AND handle LIKE '88.101/SN-%'")]


@pytest.fixture
async def provisioned(dsn):
    pool = await db.create_pool(dsn, max_size=1)
    try:
        now = int(time.time())
        await home_prefix(Store(pool), SiteDescription(Settings.load(env={})), PREFIX, now)
        return await create_prefix_admin(Store(pool), PREFIX, now)
    finally:
        await pool.close()


@pytest.fixture
async def served(dsn, tmp_path, provisioned):
    server = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path / "node"), "--port", "0", "--tls-port", "0", "--workers", "1",
                          env={"IDRES_BATCH_CHUNK_SIZE": "50"})
    await asyncio.to_thread(server.start)
    password = tmp_path / "secret"
    password.write_text(provisioned.secret + "\n")
    yield server, ["--user", str(provisioned.identity), "--password-file", str(password), "--insecure"]
    await asyncio.to_thread(server.stop)


async def test_a_csv_through_the_node_with_bad_lines_reported_by_number(served, tmp_path, dsn):
    server, auth = served
    file = write_csv(tmp_path / "serials.csv", range(1, 11), bad={4: "SN-00004,https://x,S4", 7: ",https://x,S7,WM"})
    result = await asyncio.to_thread(idres, "import", str(file), "--prefix", PREFIX, "--node", server.https, *auth, "--json", "--quiet")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["lines"], summary["created"], summary["failed"]) == (10, 8, 2)
    assert [e["line"] for e in summary["errors"]] == [5, 8]  # the header is line 1
    assert await keys_under(dsn) == [f"88.101/SN-{n:05d}" for n in (1, 2, 3, 5, 6, 8, 9, 10)]
    async with db.connection(dsn) as conn:
        vals = await conn.fetchval("SELECT public_json FROM handles WHERE handle = '88.101/SN-00001'")
    assert b"HS_SIGNATURE" in vals and b"https://example.com/p/1" in vals


async def test_ndjson_with_a_key_instead_of_a_password(served, tmp_path, dsn):
    server, auth = served
    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pubkey = {"index": 300, "type": "HS_PUBKEY", "data": {"format": "key", "value": {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}}}
    group = {"index": 200, "type": "HS_VLIST", "data": {"format": "vlist", "value": [
        {"handle": f"{PREFIX}/ADMIN", "index": 300}, {"handle": f"{PREFIX}/LINE-7", "index": 300}]}}
    client = ["--url", server.https, "--user", auth[1], "--password", (tmp_path / "secret").read_text().strip(), "--insecure"]
    for handle, values, extra in ((f"{PREFIX}/LINE-7", [pubkey], []), (f"0.NA/{PREFIX}", [group], ["--add"])):
        result = await asyncio.to_thread(idres, "put", handle, *extra, "--file", "-", *client, stdin=json.dumps(values))
        assert result.returncode == 0, result.stderr
    key = tmp_path / "device.pem"
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    file = tmp_path / "items.ndjson"
    file.write_text("".join(json.dumps({"handle": f"{PREFIX}/SN-{n:05d}", "values": [{"index": 1, "type": "URL", "data": f"u{n}"}]}) + "\n"
                            for n in range(3)))
    result = await asyncio.to_thread(idres, "import", str(file), "--prefix", PREFIX, "--node", server.https,
                                     "--user", f"300:{PREFIX}/LINE-7", "--key", str(key), "--insecure")
    assert result.returncode == 0, result.stderr
    assert await keys_under(dsn) == [f"88.101/SN-{n:05d}" for n in range(3)]


async def test_the_node_killed_mid_import_and_the_import_run_again(dsn, tmp_path, provisioned):
    total, batch, chunk = 3000, 500, 50
    file = write_csv(tmp_path / "serials.csv", range(total))
    password = tmp_path / "secret"
    password.write_text(provisioned.secret)
    data_dir = tmp_path / "node"
    env = {"IDRES_BATCH_CHUNK_SIZE": str(chunk)}
    server = ServeProcess("--dsn", dsn, "--data-dir", str(data_dir), "--port", "0", "--tls-port", "0", "--workers", "1", env=env)
    await asyncio.to_thread(server.start)
    args = [str(file), "--prefix", PREFIX, "--user", str(provisioned.identity), "--password-file", str(password), "--insecure",
            "--batch-size", str(batch), "--retries", "0", "--quiet"]
    importer = start_import(*args, "--node", server.https)
    deadline = time.monotonic() + 60
    while len(await keys_under(dsn)) < 400:
        assert time.monotonic() < deadline and importer.poll() is None, "the import did not get going"
        await asyncio.sleep(0.01)
    for pid in [server.proc.pid, *server.ready["workerPids"]]:
        os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(server.stop)
    _, err = await asyncio.to_thread(importer.communicate, timeout=60)
    assert importer.returncode == 3, err
    present = await keys_under(dsn)
    assert 400 <= len(present) < total
    by_chunk: dict[int, int] = {}
    for key in present:
        by_chunk[int(key[-5:]) // chunk] = by_chunk.get(int(key[-5:]) // chunk, 0) + 1
    assert set(by_chunk.values()) == {chunk}  # whole chunks committed, nothing of the others
    server = ServeProcess("--dsn", dsn, "--data-dir", str(data_dir), "--port", "0", "--tls-port", "0", "--workers", "1", env=env)
    await asyncio.to_thread(server.start)
    try:
        again = await asyncio.to_thread(idres, *["import", *args, "--node", server.https, "--json"])
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["failed"] == 0
    finally:
        await asyncio.to_thread(server.stop)
    assert await keys_under(dsn) == [f"88.101/SN-{n:05d}" for n in range(total)]
    assert sorted(await creates_logged(dsn)) == [f"88.101/SN-{n:05d}" for n in range(total)]  # each created once


async def test_two_importers_on_overlapping_files(served, tmp_path, dsn):
    server, auth = served
    first = write_csv(tmp_path / "first.csv", range(0, 1500))
    second = write_csv(tmp_path / "second.csv", range(700, 2200))
    runs = [start_import(str(f), "--prefix", PREFIX, "--node", server.https, *auth, "--batch-size", "300", "--json", "--quiet")
            for f in (first, second)]
    outputs = [await asyncio.to_thread(run.communicate, timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    summaries = [json.loads(out) for out, _ in outputs]
    assert sum(s["created"] for s in summaries) == 2200 and sum(s["unchanged"] for s in summaries) == 800
    assert await keys_under(dsn) == [f"88.101/SN-{n:05d}" for n in range(2200)]
    assert sorted(await creates_logged(dsn)) == [f"88.101/SN-{n:05d}" for n in range(2200)]


async def test_straight_into_the_database_with_copy(dsn, tmp_path, provisioned):
    keys = tmp_path / "keys"
    node_keyring(Settings.load(env={}, keys_dir=keys), int(time.time()))  # the node's signing key
    first = write_csv(tmp_path / "serials.csv", range(0, 1201),
                      bad={5: "SN-00005,https://x,S5", 9: "SN-0\u200b0009,https://x,S9,WM"})  # short; a zero-width space
    common = ["--prefix", PREFIX, "--dsn", dsn, "--keys-dir", str(keys), "--batch-size", "500", "--json", "--quiet"]
    result = await asyncio.to_thread(idres, "import", str(first), *common)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["created"], summary["failed"]) == (1199, 2)
    assert [e["line"] for e in summary["errors"]] == [7, 11] and "identifier policy" in summary["errors"][1]["message"]
    async with db.connection(dsn) as conn:
        signed = await conn.fetchval("SELECT count(*) FROM handles WHERE handle LIKE '88.101/SN-%' AND sig_expires IS NOT NULL")
    assert signed == 1199
    assert len(await creates_logged(dsn)) == 1199
    again = await asyncio.to_thread(idres, "import", str(first), *common)
    assert json.loads(again.stdout)["alreadyDone"] is True
    overlapping = write_csv(tmp_path / "more.csv", range(1000, 1500))
    result = await asyncio.to_thread(idres, "import", str(overlapping), *common)
    assert (json.loads(result.stdout)["created"], json.loads(result.stdout)["unchanged"]) == (299, 201)
    assert len(await creates_logged(dsn)) == 1498


async def test_all_or_nothing_refuses_a_file_with_a_bad_line(dsn, tmp_path, provisioned):
    file = write_csv(tmp_path / "serials.csv", range(0, 20), bad={3: "SN-00003"})
    result = await asyncio.to_thread(idres, "import", str(file), "--prefix", PREFIX, "--dsn", dsn, "--keys-dir",
                                     str(tmp_path / "keys"), "--all-or-nothing")
    assert result.returncode == 2
    assert "line 5: 1 cells where the header has 4" in result.stderr
    assert await keys_under(dsn) == []
