"""``idres mirror add|list|status|remove``: the prefixes this node copies from other nodes, against its data
directory or DSN (docs/replication.md)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from registry.errors import ConfigurationError
from registry.model import parse_prefix

from ..config import Settings
from ..ops.mirroring import add_mirror, check_certificates, list_mirrors, mirror_status, remove_mirror
from .output import EXIT_OK, EXIT_REFUSED, Output


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, storage: argparse.ArgumentParser) -> None:
    mirror = sub.add_parser("mirror", help="keep read-only copies of other nodes' prefixes")
    msub = mirror.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = msub.add_parser("add", parents=[common, storage], help="mirror a prefix of another node")
    add.add_argument("--from", dest="origin", required=True, metavar="URL", help="base URL of the node to copy from")
    add.add_argument("--prefix", required=True, help="the prefix to mirror, e.g. 88.101")
    add.add_argument("--user", help="identity index:handle to read the origin's feed as (an admin of the prefix there)")
    add.add_argument("--password-file", type=Path, help="file holding that identity's secret key")
    add.add_argument("--trust-root", type=Path, help="verify records up to this root key, PEM or JWK (default: IDRES_TRUST_ROOT)")
    add.add_argument("--ca-file", type=Path, help="CA bundle or the origin's certificate, to verify its HTTPS")
    add.add_argument("--insecure", action="store_true", help="do not verify the origin's HTTPS certificate")
    add.set_defaults(run=cmd_add)
    msub.add_parser("list", parents=[common, storage], help="list the mirrored prefixes").set_defaults(run=cmd_list)
    status = msub.add_parser("status", parents=[common, storage], help="cursor, lag, records and errors of each mirror")
    status.add_argument("prefix", nargs="?", help="only this mirrored prefix")
    status.set_defaults(run=cmd_status)
    remove = msub.add_parser("remove", parents=[common, storage], help="stop mirroring a prefix (its records stay)")
    remove.add_argument("prefix", help="the mirrored prefix")
    remove.set_defaults(run=cmd_remove)


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def cmd_add(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    prefix = parse_prefix(args.prefix)
    secret = _read(args.password_file, "password file")
    ca_pem = _read(args.ca_file, "CA file")
    check_certificates(ca_pem, str(args.ca_file))
    added = asyncio.run(add_mirror(
        settings, prefix, args.origin, user=args.user, secret=secret.decode("utf-8").strip() if secret is not None else None,
        trust_root=_read(args.trust_root, "trust root"), ca_pem=ca_pem, tls_verify=not args.insecure))
    verified = ("verified up to the given trust root" if added.trust_root else
                "verified up to the node's trust root (IDRES_TRUST_ROOT, --trust-root) if it has one")
    out.emit({"prefix": added.spelled, "origin": added.origin, "mirrored": True, "user": added.username,
              "trustRoot": added.trust_root is not None},
             f"prefix {added.spelled} mirrored from {added.origin}; a running node starts following it within seconds; "
             f"records {verified}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    kept = asyncio.run(list_mirrors(settings))
    data = [{"prefix": m.spelled, "origin": m.origin, "state": m.state, "user": m.username,
             "trustRoot": m.trust_root is not None} for m in kept]
    lines = [f"{m.spelled} <- {m.origin} ({m.state})" for m in kept] or ["(no mirrors)"]
    out.emit({"mirrors": data}, "\n".join(lines))
    return EXIT_OK


def _status_line(m: dict[str, Any]) -> str:
    lag = "?" if m["lagChanges"] is None else m["lagChanges"]
    line = (f"{m['prefix']} <- {m['origin']}: {m['state']}, cursor {m['cursor']}, lag {lag} changes / {m['lagSeconds']:g} s, "
            f"{m['records']} records, {m['rejected']} rejected, verification {m['verification']}")
    return line + (f"\n  last error ({m['lastErrorAt']}): {m['lastError']}" if m["lastError"] else "")


def cmd_status(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    prefix = parse_prefix(args.prefix) if args.prefix else None
    status = asyncio.run(mirror_status(settings, prefix))
    if prefix is not None and not status["mirrors"]:
        return out.error(f"prefix {prefix} is not mirrored here", EXIT_REFUSED)
    feed = status["feed"]
    lines = [_status_line(m) for m in status["mirrors"]] or ["(no mirrors)"]
    lines.append(f"this node's change feed: head {feed['head']}, horizon {feed['horizon']}, retention {feed['retentionSeconds']} s")
    out.emit(status, "\n".join(lines))
    return EXIT_OK


def cmd_remove(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    prefix = parse_prefix(args.prefix)
    if not asyncio.run(remove_mirror(settings, prefix)):
        return out.error(f"prefix {prefix} is not mirrored here", EXIT_REFUSED)
    out.emit({"prefix": prefix, "mirrored": False},
             f"prefix {prefix} is no longer mirrored (its records stay in the database; `idres prefix home {prefix}` "
             "would make this node answer for them)")
    return EXIT_OK
