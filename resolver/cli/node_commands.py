"""``idres serve``, ``migrate``, ``prefix home|unhome|list`` and ``admin create``: run a node and set it
up, against its data directory or DSN."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any, Callable

from registry.model import parse_prefix, prefix_record_handle
from registry.pg import db
from registry.pg.embedded import EmbeddedPostgres
from registry.pg.migrate import migrate

from ..config import Settings
from ..core.seckeys import SecretHasher
from ..keys.site import site_of
from ..ops.provisioning import create_prefix_admin, home_prefix, node_store
from ..resolution.keeper import load_snapshot
from ..writes.secrets import hash_all_clear_secrets
from . import delegation_commands
from .output import EXIT_OK, EXIT_REFUSED, Output


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, storage: argparse.ArgumentParser) -> None:
    _add_serve(sub, common, storage)
    _add_operator_commands(sub, common, storage)


def _add_serve(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, storage: argparse.ArgumentParser) -> None:
    serve = sub.add_parser("serve", parents=[common, storage], help="run a node")
    serve.add_argument("--host", help="address to listen on (IDRES_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port, 0 for any free port (IDRES_PORT, default 8000)")
    serve.add_argument("--tls-port", help="HTTPS port, 0 for any, 'off' for none (IDRES_TLS_PORT, default 8443)")
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate for HTTPS (IDRES_TLS_CERT; default: self-signed)")
    serve.add_argument("--tls-key", type=Path, help="PEM private key for HTTPS (IDRES_TLS_KEY)")
    serve.add_argument("--workers", type=int, help="worker processes (IDRES_WORKERS, default: CPU count)")
    serve.add_argument("--demo", action="store_true", default=None, help="home a demo prefix with sample identifiers (IDRES_DEMO)")
    serve.add_argument("--allow-http-auth", action="store_true", default=None,
                       help="accept credentials over plain HTTP, behind a TLS-terminating proxy (IDRES_ALLOW_HTTP_AUTH)")
    serve.add_argument("--server-admin", action="append", dest="server_admins",
                       help="identity index:handle with every right on this node; repeatable (IDRES_SERVER_ADMINS)")
    serve.add_argument("--trust-root", type=Path, help="verify other nodes' answers up to this root key, PEM or JWK (IDRES_TRUST_ROOT)")
    serve.add_argument("--root-node", action="append", dest="root_node", metavar="URL",
                       help="a root node to ask for prefixes this node knows nothing of; repeatable (IDRES_ROOT_NODE)")
    serve.add_argument("--refer", action="store_true", default=None,
                       help="refer clients to delegates instead of resolving for them, unless they send doNotRefer (IDRES_REFER)")
    serve.set_defaults(run=cmd_serve)


def _add_operator_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, storage: argparse.ArgumentParser) -> None:
    mig = sub.add_parser("migrate", parents=[common, storage], help="create or upgrade the database schema")
    mig.set_defaults(run=cmd_migrate)

    prefix = sub.add_parser("prefix", help="home, unhome, delegate or list this node's prefixes")
    psub = prefix.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("home", "answer for a prefix here"), ("unhome", "stop answering for a prefix")):
        p = psub.add_parser(action, parents=[common, storage], help=text)
        p.add_argument("prefix", help="the prefix, e.g. 88.101.5")
        if action == "home":
            p.add_argument("--port", type=int, help="HTTP port published in the prefix's HS_SITE (IDRES_PORT)")
            p.add_argument("--tls-port", help="HTTPS port published in the prefix's HS_SITE (IDRES_TLS_PORT)")
        p.set_defaults(run=cmd_prefix_home if action == "home" else cmd_prefix_unhome)
    plist = psub.add_parser("list", parents=[common, storage], help="list homed prefixes and delegations")
    plist.set_defaults(run=cmd_prefix_list)
    delegation_commands.add_parsers(psub, common, storage)

    admin = sub.add_parser("admin", help="manage admin identities")
    asub = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = asub.add_parser("create", parents=[common, storage], help="create an admin identity with a secret key for a prefix")
    create.add_argument("--prefix", required=True, help="the prefix it administers")
    create.add_argument("--handle", default="ADMIN", help="suffix of the identity's handle (default ADMIN: <prefix>/ADMIN)")
    create.add_argument("--index", type=int, default=300, help="index of its HS_SECKEY (default 300)")
    create.set_defaults(run=cmd_admin_create)
    hashing = asub.add_parser("hash-secrets", parents=[common, storage],
                              help="store every HS_SECKEY still kept in clear in its hashed form")
    hashing.set_defaults(run=cmd_admin_hash_secrets)


def cmd_serve(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    from ..ops.bootstrap import Prepared
    from ..serving.logs import configure_logging
    from ..serving.supervisor import serve

    configure_logging(settings.operation.log_level)

    def announce(final: Settings, prepared: Prepared, pids: list[int]) -> None:
        listen = final.listen
        http = f"http://{listen.advertised_address}:{listen.port}"
        https = f"https://{listen.advertised_address}:{listen.tls_port}" if listen.tls_port is not None else None
        data: dict[str, Any] = {"event": "ready", "http": http, "https": https, "workers": listen.workers, "workerPids": pids}
        lines = [f"idres is serving {http}" + (f" and {https}" if https else "") + f" with {listen.workers} worker(s)"]
        if prepared.demo_admin is not None:
            admin = prepared.demo_admin
            data["demo"] = {"user": str(admin.identity), "password": admin.secret, "example": f"{http}/api/handles/88.101.5/SN-000123"}
            lines += [
                f"demo prefix 88.101.5 with sample identifiers; try: curl {http}/api/handles/88.101.5/SN-000123",
                f"demo admin (over HTTPS): user {admin.identity}  password {admin.secret}",
            ]
        out.emit(data, "\n".join(lines))

    return serve(settings, announce)


def _run(coro_factory: Callable[[], Any]) -> Any:
    return asyncio.run(coro_factory())


def cmd_migrate(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    async def go() -> list:
        embedded = EmbeddedPostgres(settings.storage.data_dir) if settings.storage.dsn is None else None
        dsn = embedded.start() if embedded is not None else settings.storage.dsn
        try:
            async with db.connection(dsn) as conn:
                return await migrate(conn)
        finally:
            if embedded is not None:
                embedded.stop()

    applied = _run(go)
    names = [f"{m.version:04d}_{m.name}" for m in applied]
    out.emit({"applied": names}, "applied: " + ", ".join(names) if names else "the schema is up to date")
    return EXIT_OK


def cmd_prefix_home(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    prefix = parse_prefix(args.prefix)
    settings.identifiers.policy().check_new(prefix_record_handle(prefix))  # as POST /api/prefixes does

    async def go() -> bool:
        async with node_store(settings) as (store, keyring):
            site = site_of(settings, keyring)
            return await home_prefix(store, site, prefix, int(time.time()), keyring, settings.signing.signature_lifetime)

    added = _run(go)
    out.emit({"prefix": prefix, "homed": True, "changed": added}, f"prefix {prefix} " + ("homed" if added else "was already homed"))
    return EXIT_OK


def cmd_prefix_unhome(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    prefix = parse_prefix(args.prefix)

    async def go() -> bool:
        async with node_store(settings) as (store, _keyring):
            return await store.unhome(prefix)

    removed = _run(go)
    if not removed:
        return out.error(f"prefix {prefix} is not homed here", EXIT_REFUSED)
    out.emit({"prefix": prefix, "homed": False}, f"prefix {prefix} unhomed (its handles stay in the database)")
    return EXIT_OK


def cmd_prefix_list(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    async def go():
        async with node_store(settings) as (store, _keyring):
            return await load_snapshot(store)

    snapshot = _run(go)
    prefixes = list(snapshot.homed)
    delegated = {d.prefix: d.describe() for d in snapshot.delegated()}
    mirrored = {m.prefix: m.origin for m in snapshot.mirrored()}
    lines = list(prefixes) or ["(no prefixes homed)"]
    lines += [f"{prefix} -> {where}" for prefix, where in sorted(delegated.items())]
    lines += [f"{prefix} <- {origin} (read-only mirror)" for prefix, origin in sorted(mirrored.items())]
    out.emit({"prefixes": prefixes, **({"delegated": delegated} if delegated else {}), **({"mirrored": mirrored} if mirrored else {})},
             "\n".join(lines))
    return EXIT_OK


def cmd_admin_create(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    prefix = parse_prefix(args.prefix)

    async def go():
        async with node_store(settings) as (store, _keyring):
            return await create_prefix_admin(store, prefix, int(time.time()), args.handle, args.index,
                                             SecretHasher(settings.auth.seckey_iterations))

    admin = _run(go)
    out.emit(
        {"user": str(admin.identity), "password": admin.secret, "prefix": prefix},
        f"admin of {prefix}: user {admin.identity}\nsecret (shown once, keep it safe): {admin.secret}",
    )
    return EXIT_OK


def cmd_admin_hash_secrets(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    async def go() -> int:
        async with node_store(settings) as (store, _keyring):
            return await hash_all_clear_secrets(store, SecretHasher(settings.auth.seckey_iterations))

    count = _run(go)
    out.emit({"hashed": count}, f"{count} secret key{'s' if count != 1 else ''} stored in clear now hashed")
    return EXIT_OK
