"""``idres keys …`` and ``idres verify``: the node's signing keys, certificates, and checking signatures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path
from typing import AsyncIterator

import orjson

from registry.errors import ConfigurationError, PrefixNotHomed
from registry.jws import public_jwk
from registry.model import Handle, parse_prefix
from registry.signing import PERMS, Permission
from registry.pg.store import Store
from registry.trust import TrustAnchor, verify

from ..config import Settings
from ..core.authority import AuthoritySnapshot
from ..keys.certification import (
    certify_child,
    certify_root,
    child_permissions,
    install_certificate,
    keys_from_values,
    parse_subject_key,
)
from ..keys.keyring import Keyring
from ..keys.publication import free_key_index, publish_keys
from ..ops.provisioning import node_store
from .client import HandleClient
from .verification import NodeFetcher, load_root_key, report_json, report_text

EXIT_OK, EXIT_REFUSED = 0, 1


def add_parsers(sub: argparse._SubParsersAction, common, storage, remote) -> None:
    keys = sub.add_parser("keys", help="the node's signing keys and certificates")
    ksub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")

    gen = ksub.add_parser("generate", parents=[common, storage], help="make a key (active if it is the first, else pending)")
    gen.add_argument("--alg", choices=["ed25519", "rsa"], dest="key_algorithm", help="Ed25519 (default) or RSA-2048")
    gen.set_defaults(run=cmd_generate)
    ksub.add_parser("list", parents=[common, storage], help="list keys and their states").set_defaults(run=cmd_list)
    rot = ksub.add_parser("rotate", parents=[common, storage], help="make the pending key active; the active key retires")
    rot.add_argument("--kid", help="the key to activate (default: the newest pending key)")
    rot.set_defaults(run=cmd_rotate)
    exp = ksub.add_parser("export", parents=[common, storage], help="print a key's public part for a parent to certify")
    exp.add_argument("--kid", help="the key (default: the pending key if any, else the active key)")
    exp.set_defaults(run=cmd_export)

    cert = ksub.add_parser("certify", parents=[common, storage], help="certify a child prefix's key, or this node as a root")
    cert.add_argument("prefix", nargs="?", help="the child prefix, e.g. 88.101.5")
    cert.add_argument("--key", help="the child's key: a file (PEM, JWK, `idres keys export` JSON) or the child node's URL")
    cert.add_argument("--index", type=int, help="HS_PUBKEY index of the key: for PEM or JWK files (default 300), or to "
                      "pick one of the keys a child node publishes (default: its newest)")
    cert.add_argument("--perm", action="append", choices=PERMS, help="a permission on 0.NA/<prefix>; repeatable "
                      "(default: thisHandle and derivedPrefixes)")
    cert.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    cert.add_argument("--root", action="store_true", help="this node is a trust root: self-certify on the root handle")
    cert.add_argument("--out", type=Path, help="also write the certificate (JWS) to this file")
    cert.add_argument("--insecure", action="store_true", help="with --key URL: do not verify the child's TLS certificate")
    cert.set_defaults(run=cmd_certify)
    inst = ksub.add_parser("install-cert", parents=[common, storage], help="store a certificate a parent issued for this node")
    inst.add_argument("file", type=Path, help="the certificate (JWS) file")
    inst.set_defaults(run=cmd_install)

    ver = sub.add_parser("verify", parents=[common, remote], help="check a record's signatures up to a trusted root")
    ver.add_argument("handle")
    ver.add_argument("--node", action="append", default=[], help="a node to resolve from; repeatable, asked in order "
                     "(default: --url)")
    ver.add_argument("--root-key", type=Path, help="the trust root's public key, PEM or JWK (IDRES_ROOT_KEY)")
    ver.add_argument("--root-handle", help="the trust root handle (IDRES_TRUST_ROOT_HANDLE, default 0.0/0.0)")
    ver.set_defaults(run=cmd_verify)


@contextlib.asynccontextmanager
async def _node_store(settings: Settings) -> AsyncIterator[tuple[Store, Keyring, AuthoritySnapshot]]:
    """The node's store, signing as the node does, its keyring, and who answers for what on it."""
    async with node_store(settings.with_changes(signing=True)) as (store, keyring):
        yield store, keyring, store.sealer.authority.snapshot


def _entry_json(keyring: Keyring, entry) -> dict:
    return {"kid": entry.kid, "alg": entry.alg, "index": entry.index, "state": entry.state, "created": entry.created,
            "retired": entry.retired, "publicKey": public_jwk(keyring.public_key(entry.kid))}


async def _publish(settings: Settings) -> int:
    async with _node_store(settings) as (store, keyring, _authority):
        return await publish_keys(store, keyring, int(time.time()), settings.signing.signature_lifetime)


def cmd_generate(args: argparse.Namespace, settings: Settings, out) -> int:
    async def go():
        async with _node_store(settings) as (store, keyring, _authority):
            now = int(time.time())
            entry = keyring.generate(settings.signing.key_algorithm, now, index=await free_key_index(store, keyring))
            return keyring, entry, await publish_keys(store, keyring, now, settings.signing.signature_lifetime)

    keyring, entry, changed = asyncio.run(go())
    data = {**_entry_json(keyring, entry), "publishedOn": changed}
    note = "" if entry.state == "active" else "; get it certified, then run `idres keys rotate`"
    out.emit(data, f"{entry.state} key {entry.kid} ({entry.alg}) at HS_PUBKEY index {entry.index}, "
                   f"published on {changed} prefix record(s){note}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace, settings: Settings, out) -> int:
    keyring = Keyring(settings.keys_path)
    keys = [_entry_json(keyring, e) for e in keyring.entries]
    lines = [f"{k['state']:<8} {k['index']:>4}  {k['alg']:<6} {k['kid']}" for k in keys] or ["(no keys: run `idres keys generate`)"]
    out.emit({"keys": keys}, "\n".join(lines))
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace, settings: Settings, out) -> int:
    keyring = Keyring(settings.keys_path)
    new, old = keyring.rotate(int(time.time()), args.kid)
    changed = asyncio.run(_publish(settings))
    out.emit({"active": new.kid, "retired": old.kid if old else None, "publishedOn": changed},
             f"key {new.kid} now signs; {old.kid if old else 'no key'} retired (its signatures stay valid until they expire)")
    return EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings, out) -> int:
    keyring = Keyring(settings.keys_path)
    chosen = [e for e in keyring.entries if e.kid == args.kid] if args.kid else (
        [e for e in keyring.entries if e.state == "pending"] or [e for e in keyring.entries if e.state == "active"])
    if not chosen:
        raise ConfigurationError("no such key: run `idres keys list`")
    entry = chosen[-1]
    data = {"index": entry.index, "publicKey": public_jwk(keyring.public_key(entry.kid))}
    out.emit(data, orjson.dumps(data).decode())
    return EXIT_OK


def _subject_keys(args: argparse.Namespace, prefix: str) -> list:
    if args.key is None:
        raise ConfigurationError("give the child's key with --key FILE or --key URL")
    if args.key.startswith(("http://", "https://")):
        client = HandleClient(args.key, verify=not args.insecure)
        reply = client.request("GET", client.handle_path(f"0.NA/{prefix}"), [("type", "HS_PUBKEY")])
        if not isinstance(reply.body, dict) or reply.body.get("responseCode") != 1:
            raise ConfigurationError(f"{args.key} did not return the HS_PUBKEY values of 0.NA/{prefix} (HTTP {reply.status})")
        found = keys_from_values(reply.body.get("values", []))
        if args.index is not None:
            found = [k for k in found if k.index == args.index]
        if not found:
            raise ConfigurationError(f"0.NA/{prefix} at {args.key} has no public key" + (f" at index {args.index}" if args.index else ""))
        return [max(found, key=lambda k: k.index)]
    return [parse_subject_key(Path(args.key).read_bytes(), args.index if args.index is not None else 300)]


def cmd_certify(args: argparse.Namespace, settings: Settings, out) -> int:
    now, lifetime = int(time.time()), args.days * 86400
    if args.root:
        return _certify_root(args, settings, out, now, lifetime)
    if not args.prefix:
        raise ConfigurationError("name the child prefix to certify, or use --root")
    prefix = parse_prefix(args.prefix)
    perms = [Permission(p, f"0.NA/{prefix}") if p != "everything" else Permission(p) for p in args.perm] if args.perm else child_permissions(prefix)
    subjects = _subject_keys(args, prefix)

    async def go() -> list[str]:
        async with _node_store(settings) as (store, keyring, authority):
            return [await certify_child(store, keyring, authority, prefix, s, perms, now=now, lifetime=lifetime) for s in subjects]

    issued = asyncio.run(go())
    if args.out:
        args.out.write_text("\n".join(issued) + "\n")
    out.emit({"prefix": prefix, "certificates": issued},
             f"certified {len(issued)} key(s) of {prefix} for {args.days} days on 0.NA/{prefix}"
             + (f"; certificate written to {args.out}" if args.out else "") + "\n" + "\n".join(issued))
    return EXIT_OK


def _certify_root(args: argparse.Namespace, settings: Settings, out, now: int, lifetime: int) -> int:
    root = Handle.parse(settings.signing.trust_root_handle)

    async def go() -> list[str]:
        async with _node_store(settings) as (store, keyring, authority):
            if not authority.is_homed(root.prefix):
                raise PrefixNotHomed(f"the root handle {root.text} needs its prefix homed: run `idres prefix home {root.prefix}`")
            return await certify_root(store, keyring, root.text, now=now, lifetime=lifetime)

    issued = asyncio.run(go())
    if args.out:
        args.out.write_text(issued[0] + "\n")
    out.emit({"root": root.text, "certificates": issued},
             f"self-certified on {root.text} and certified {len(issued) - 1} homed prefix record(s) for {args.days} days")
    return EXIT_OK


def cmd_install(args: argparse.Namespace, settings: Settings, out) -> int:
    jws = args.file.read_text().strip().splitlines()

    async def go() -> list[str]:
        async with _node_store(settings) as (store, keyring, authority):
            return [await install_certificate(store, keyring, authority, line, now=int(time.time())) for line in jws if line]

    records = asyncio.run(go())
    out.emit({"installedOn": records}, f"installed {len(records)} certificate(s) on {', '.join(records)}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, settings: Settings, out) -> int:
    path = args.root_key or settings.signing.root_key
    if path is None:
        raise ConfigurationError("give the trust root's public key with --root-key FILE or IDRES_ROOT_KEY")
    root_key = load_root_key(path.read_bytes())
    anchor = TrustAnchor((root_key,), args.root_handle or settings.signing.trust_root_handle)
    nodes = args.node or [settings.client.url]
    # anonymous: what is verified is what anyone reads, and no credentials go to other organisations' nodes
    fetcher = NodeFetcher([HandleClient(n, verify=settings.client.tls_verify, ca_file=settings.client.ca_file) for n in nodes])
    values = fetcher.record(args.handle)
    if values is None:
        raise ConfigurationError(f"no node of {', '.join(nodes)} has {args.handle}")
    report = verify(args.handle, values, anchor, int(time.time()), fetcher.record)
    types = {v.index: v.type for v in values}
    out.emit(report_json(report, types), report_text(report, types))
    return EXIT_OK if report.ok else EXIT_REFUSED
