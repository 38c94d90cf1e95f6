"""``idres import FILE --prefix P``: register a file of identifiers, through a running node's batch API
(``--node``) or straight into its database (``--dsn``/``--data-dir``), with a progress bar and a
checkpoint to resume from. Bad lines are reported with their numbers while the good ones go in."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from registry.errors import ConfigurationError, ProtocolError
from registry.model import parse_prefix
from registry.validation import ValueLimits

from ..config import Settings
from ..ops.direct_import import Sealers, SealingSetup, import_direct
from ..ops.importer import Checkpoint, Reader, Summary, read_mapping
from ..ops.provisioning import node_store
from ..ops.remote_import import BasicAuth, BatchClient, KeyAuth, import_remote
from ..writes.operations import InputChecks
from .output import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Output


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, storage: argparse.ArgumentParser) -> None:
    p = sub.add_parser("import", parents=[common, storage], help="register identifiers from a CSV or NDJSON file")
    p.add_argument("file", type=Path, help="CSV with a header row (suffix or handle, then value types) or NDJSON")
    p.add_argument("--prefix", required=True, help="the prefix the identifiers are under, e.g. 88.101.5")
    p.add_argument("--format", choices=["csv", "ndjson"], help="default: from the file name (.ndjson/.jsonl: NDJSON)")
    p.add_argument("--mapping", type=Path, help='JSON: CSV column -> index, or {"index": n, "type": T, "ttl": s}')
    p.add_argument("--node", help="base URL of a running node: import through its batch API (https://…:8443)")
    p.add_argument("--user", help="identity index:handle to authenticate as (with --node)")
    p.add_argument("--password-file", type=Path, help="file holding the identity's secret key (HTTP Basic)")
    p.add_argument("--key", type=Path, help="PEM private key of the identity's HS_PUBKEY (challenge-response)")
    p.add_argument("--insecure", action="store_true", help="do not verify the node's TLS certificate")
    p.add_argument("--ca-file", type=Path, help="CA bundle or the node's certificate, to verify HTTPS")
    p.add_argument("--batch-size", type=int, default=5000, help="records per batch or COPY chunk (default 5000)")
    p.add_argument("--checkpoint", type=Path, help="where progress is kept (default FILE.checkpoint)")
    p.add_argument("--restart", action="store_true", help="ignore the checkpoint and start from the first line")
    p.add_argument("--retries", type=int, default=5, help="times a batch is sent again when the node does not answer")
    p.add_argument("--all-or-nothing", action="store_true", help="refuse the whole file if any line is bad")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-line messages")
    p.set_defaults(run=cmd_import)


class ProgressBar:
    """``12,000/50,000 lines (24%)  8,123 lines/s  ETA 0:04  failed 2`` on stderr, redrawn at most 5 times a second."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.total, self.start, self.enabled = total, start, enabled
        self.began = self.last = time.monotonic()

    def __call__(self, summary: Summary, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.2):
            return
        self.last = now
        done = self.start + summary.lines
        rate = summary.lines / max(now - self.began, 1e-6)
        eta = int((self.total - done) / rate) if rate > 0 else 0
        percent = 100 * done // max(self.total, 1)
        text = (f"\r{done:,}/{self.total:,} lines ({percent}%)  {rate:,.0f} lines/s  ETA {eta // 60}:{eta % 60:02d}"
                f"  failed {summary.failed}")
        print(text, end="\n" if final else "", file=sys.stderr, flush=True)


def _reader(args: argparse.Namespace, settings: Settings) -> Reader:
    if not args.file.is_file():
        raise ProtocolError(f"{args.file} is not a file")
    reader = Reader(args.file, parse_prefix(args.prefix), fmt=args.format, mapping=read_mapping(args.mapping),
                    max_line_bytes=settings.batch.max_line_bytes, max_handle_length=settings.requests.max_handle_length)
    reader.open()
    return reader


def _refuse_bad_lines(reader: Reader, out: Output, quiet: bool) -> int | None:
    """With --all-or-nothing: the exit code if any line is bad (nothing imported), else None."""
    bad = [(line.number, line.error) for line in reader.lines(0, 0) if line.error]
    if not bad:
        return None
    for number, message in bad[:1000] if not quiet else []:
        print(f"idres: line {number}: {message}", file=sys.stderr)
    return out.error(f"{len(bad)} bad line{'s' if len(bad) != 1 else ''} in {reader.path}: nothing imported", EXIT_USAGE)


def _client(args: argparse.Namespace) -> BatchClient:
    if not args.user:
        raise ConfigurationError("--node needs --user INDEX:HANDLE and --password-file or --key")
    if args.key is not None:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        auth: BasicAuth | KeyAuth = KeyAuth(args.user, load_pem_private_key(args.key.read_bytes(), password=None))
    elif args.password_file is not None:
        auth = BasicAuth(args.user, args.password_file.read_text().strip())
    else:
        raise ConfigurationError("give the identity's secret with --password-file, or its private key with --key")
    return BatchClient(args.node, auth, verify=not args.insecure, ca_file=str(args.ca_file) if args.ca_file else None)


def cmd_import(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    reader = _reader(args, settings)
    if args.all_or_nothing and (refused := _refuse_bad_lines(reader, out, args.quiet)) is not None:
        return refused
    checkpoint = Checkpoint.load(args.checkpoint or args.file.with_name(args.file.name + ".checkpoint"), args.file, args.restart)
    if checkpoint.done:
        out.emit({"lines": 0, "created": 0, "unchanged": 0, "failed": 0, "errors": [], "alreadyDone": True},
                 f"{args.file} was imported already (see {checkpoint.path}; --restart to import it again)")
        return EXIT_OK
    header = 1 if reader.data_start and checkpoint.line else 0
    bar = ProgressBar(reader.count_lines(), max(0, checkpoint.line - header), not args.quiet)

    def report(number: int, message: str) -> None:
        if not args.quiet:
            print(f"\ridres: line {number}: {message}", file=sys.stderr)

    summary = asyncio.run(_run(args, settings, reader, checkpoint, bar, report))
    bar(summary, final=True)
    text = f"{summary.created:,} created, {summary.unchanged:,} unchanged, {summary.failed:,} failed of {summary.lines:,} lines"
    out.emit(summary.to_json(), text)
    return EXIT_OK if summary.failed == 0 else EXIT_REFUSED


async def _run(args, settings: Settings, reader: Reader, checkpoint: Checkpoint, bar: ProgressBar, report) -> Summary:
    if args.node:
        client = _client(args)
        try:
            return await import_remote(client, reader, checkpoint, batch_size=args.batch_size, retries=args.retries,
                                       progress=bar, report=report)
        finally:
            await client.close()
    async with node_store(settings) as (store, keyring):
        if keyring is not None and keyring.active is None:
            raise ConfigurationError(f"there is no signing key in {settings.keys_path}: give the node's --keys-dir "
                                     "(or start the node once, which makes its key), or set IDRES_SIGNING=false")
        setup = SealingSetup(str(settings.keys_path) if keyring is not None else None, settings.signing.signature_lifetime,
                             tuple(await store.homed_prefixes()), settings.auth.seckey_iterations, int(time.time()),
                             InputChecks(settings.identifiers.policy(), ValueLimits(settings.requests.max_handle_length)))
        sealers = Sealers(setup, os.cpu_count() or 1)
        try:
            return await import_direct(store, reader, checkpoint, chunk=args.batch_size, sealers=sealers,
                                       progress=bar, report=report)
        finally:
            sealers.close()
