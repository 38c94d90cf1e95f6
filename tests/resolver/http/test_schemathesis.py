"""Schemathesis against a live node: generated requests for every operation of /api/openapi.json, with
the demo admin's credentials over HTTPS (so writes and admin operations run past authentication) and
anonymously over HTTP; no 5xx, and no answer outside the document (status, content type, headers, body)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from resolver.config import idres_version as version
from resolver.http.openapi import ROUTE, document
from tests.nodes import ServeProcess, basic

CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"
SEED = "20261201"
# generated credentials fail by the thousand: without this, the login limits would soon answer 429 to
# everything, the admin's requests included, and leave the operations behind them untested
NO_LOGIN_LIMITS = {"IDRES_RATE_FAILED_LOGINS_PER_IDENTITY": "0", "IDRES_RATE_FAILED_LOGINS_PER_ADDRESS": "0"}
# long-polls of the change feed (wait=) end within a second; a longer wait= is refused with 400
SHORT_LONG_POLLS = {"IDRES_SYNC_MAX_WAIT": "1", "IDRES_MIRROR_WAIT": "0.5"}


def schemathesis(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", url, "--checks", CHECKS,
               "--mode", "all", "--tls-verify", "false", "--max-redirects", "0", "--seed", SEED, "--no-color",
               "--generation-database", "none", "--request-timeout", "30", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)


def operations(result: subprocess.CompletedProcess) -> tuple[int, int]:
    """(operations in the document, operations tested), from the run's summary."""
    total = re.search(r"Selected:\s+\d+/(\d+)", result.stdout)
    tested = re.search(r"Tested:\s+(\d+)", result.stdout)
    return (int(total.group(1)) if total else -1), (int(tested.group(1)) if tested else 0)


async def test_generated_requests_find_no_server_error_and_nothing_outside_the_document(dsn, tmp_path):
    node = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path / "data"), "--demo", "--port", "0", "--tls-port", "0",
                        "--workers", "1", env=NO_LOGIN_LIMITS | SHORT_LONG_POLLS)
    await asyncio.to_thread(node.start)
    try:
        demo = node.ready["demo"]
        admin = f"Authorization: {basic(demo['user'], demo['password'])['Authorization']}"
        secure = await asyncio.to_thread(schemathesis, node.https + ROUTE, "--header", admin, "--max-examples", "25", cwd=tmp_path)
        anonymous = await asyncio.to_thread(schemathesis, node.http + ROUTE, "--max-examples", "10", cwd=tmp_path)
    finally:
        log = await asyncio.to_thread(node.stop)
    described = sum(len(item) for item in document(version())["paths"].values())
    for run in (secure, anonymous):
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
        total, tested = operations(run)
        assert total == tested >= described - 2, run.stdout[-3000:]  # schemathesis counts /x and /x/ once
    incidents = [line for line in log.splitlines() if "internal error" in line]  # what idres logs for a 500
    assert incidents == []
