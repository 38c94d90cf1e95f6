"""``idres status``: is the node ready, and how is its embedded PostgreSQL?"""

from __future__ import annotations

import argparse
from typing import Any

from registry.errors import ServerUnavailable
from registry.pg.embedded import EmbeddedPostgres

from ..config import Settings
from .client import HandleClient
from .output import EXIT_OK, EXIT_UNAVAILABLE, Output


def add_parser(sub: argparse._SubParsersAction, common, storage, remote) -> None:
    status = sub.add_parser("status", parents=[common, storage, remote],
                            help="whether a running node is ready, and the state of its embedded PostgreSQL")
    status.set_defaults(run=cmd_status)


def _readiness(settings: Settings) -> tuple[bool, Any]:
    client = HandleClient(settings.client.url, verify=settings.client.tls_verify, ca_file=settings.client.ca_file)
    try:
        reply = client.request("GET", "/readyz")
    except ServerUnavailable as exc:
        return False, exc.message
    return reply.status == 200, reply.body


def _text(url: str, ready: bool, readyz: Any, embedded: dict | None) -> str:
    lines = [f"node {url}: {'ready' if ready else 'not ready'}"]
    if isinstance(readyz, dict):
        database = readyz.get("databaseState") or {}
        lines.append(f"  database reachable: {readyz.get('database')}; change follower connected: {readyz.get('changeFollower')}")
        if database and not database.get("available", True):
            lines.append(f"  database lost {database.get('for')} s ago; refused {database.get('refusedReads')} reads "
                         f"and {database.get('refusedWrites')} writes since")
    elif readyz:
        lines.append(f"  {readyz}")
    if embedded is not None:
        lines.append(f"embedded PostgreSQL: {embedded.get('state')} ({'running' if embedded.get('running') else 'not running'}), "
                     f"pid {embedded.get('pid')}, restarted {embedded.get('restarts', 0)} time(s)"
                     + (f"; last error: {embedded['lastError']}" if embedded.get("lastError") else ""))
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    ready, readyz = _readiness(settings)
    embedded = EmbeddedPostgres(settings.storage.data_dir).read_state() if settings.storage.dsn is None else None
    url = settings.client.url
    out.emit({"node": url, "ready": ready, "readyz": readyz, "embeddedDatabase": embedded}, _text(url, ready, readyz, embedded))
    return EXIT_OK if ready else EXIT_UNAVAILABLE
