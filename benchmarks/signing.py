"""What signing costs: signatures per second, bulk registration with and without, cache hits signed vs not.

    python benchmarks/signing.py [--handles 50000] [--duration 10] [--seals 2000]

1. Record seals per second (an HS_SIGNATURE over a five-value product record) with Ed25519 and
   RSA-2048 keys, beside the bare signature operation of each key.
2. Bulk registration (COPY of N records through the store) with a signing store against the same
   store without a sealer, in the same run.
3. Cache-hit throughput of a node serving signed records against one serving the same records
   unsigned, measured alternately (two rounds each), with wrk or the built-in load generator.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from harness import measure, seed, start_idres, warm

from registry.pg import db
from registry.pg.embedded import EmbeddedPostgres
from registry.jws import sign_bytes
from registry.model import ValueRef
from registry.signing import RecordSigner
from resolver.keys.keyring import new_private_key
from resolver.ops.demo import demo_record


def seal_rate(algorithm: str, count: int) -> tuple[float, float]:
    """(record seals per second, bare signatures per second) for one key algorithm."""
    key = new_private_key(algorithm)
    signer = RecordSigner(key, lambda _h: ValueRef(300, "0.NA/88.101.5"), lifetime=30 * 86400)
    record = demo_record(1, int(time.time()))
    now = int(time.time())
    started = time.perf_counter()
    for _ in range(count):
        signer.seal(record, now)
    seals = count / (time.perf_counter() - started)
    data = b"x" * 400
    started = time.perf_counter()
    for _ in range(count):
        sign_bytes(key, data)
    bare = count / (time.perf_counter() - started)
    return seals, bare


async def make_databases(root_dsn: str, names: list[str]) -> list[str]:
    from urllib.parse import urlsplit, urlunsplit

    dsns = []
    async with db.connection(root_dsn) as conn:
        for name in names:
            await conn.execute(f"DROP DATABASE IF EXISTS {name}")
            await conn.execute(f"CREATE DATABASE {name}")
            dsns.append(urlunsplit(urlsplit(root_dsn)._replace(path="/" + name)))
    return dsns


def hit_rounds(dsn: str, keys: Path | None, args, workdir: Path, rounds: list[float]) -> None:
    server, url = start_idres(dsn, 1, cache=True, keys_dir=keys)
    try:
        warm(url, args.handles)
        rounds.append(measure("hit", 1, url, args, workdir).rps)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handles", type=int, default=50_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seals", type=int, default=2000, help="records sealed per algorithm")
    parser.add_argument("--loader", choices=["wrk", "builtin"], default="wrk" if shutil.which("wrk") else "builtin")
    args = parser.parse_args()

    seals = {alg: seal_rate(alg, args.seals if alg == "ed25519" else max(200, args.seals // 10)) for alg in ("ed25519", "rsa")}

    workdir = Path(tempfile.mkdtemp(prefix="idres-bench-"))
    embedded = EmbeddedPostgres(workdir)
    root_dsn = embedded.start()
    keys = workdir / "keys"
    try:
        signed_dsn, plain_dsn = asyncio.run(make_databases(root_dsn, ["signed", "plain"]))
        bulk_plain = asyncio.run(seed(plain_dsn, args.handles, None))
        bulk_signed = asyncio.run(seed(signed_dsn, args.handles, keys))
        signed, plain = [], []
        for _ in range(2):
            hit_rounds(plain_dsn, None, args, workdir, plain)
            hit_rounds(signed_dsn, keys, args, workdir, signed)
    finally:
        embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, seals, bulk_plain, bulk_signed, plain, signed)


def report(args, seals, bulk_plain: float, bulk_signed: float, plain: list[float], signed: list[float]) -> None:
    n = args.handles
    hit_ratio = statistics.median(signed) / statistics.median(plain)
    print(f"\nsigning benchmark: {os.cpu_count()} CPUs, loader {args.loader}, {n} handles\n")
    print(f"{'measure':46} {'value':>12} {'unit':>10}")
    for alg, (per_record, bare) in seals.items():
        print(f"{'record seals, ' + alg:46} {per_record:>12.0f} {'/s':>10}")
        print(f"{'bare signatures, ' + alg:46} {bare:>12.0f} {'/s':>10}")
    print(f"{'bulk registration, unsigned (COPY)':46} {n / bulk_plain:>12.0f} {'records/s':>10}")
    print(f"{'bulk registration, signed Ed25519 (COPY)':46} {n / bulk_signed:>12.0f} {'records/s':>10}")
    print(f"{'signing cost on bulk registration':46} {bulk_signed / bulk_plain:>12.2f} {'x time':>10}")
    print(f"{'cache hits, unsigned records (median)':46} {statistics.median(plain):>12.0f} {'req/s':>10}")
    print(f"{'cache hits, signed records (median)':46} {statistics.median(signed):>12.0f} {'req/s':>10}")
    print(f"{'cache hits signed / unsigned':46} {hit_ratio:>12.3f} {'ratio':>10}\n")
    print(json.dumps({
        "benchmark": "signing",
        "cpus": os.cpu_count(),
        "handles": n,
        "seals_per_s": {alg: round(v[0], 1) for alg, v in seals.items()},
        "bare_signatures_per_s": {alg: round(v[1], 1) for alg, v in seals.items()},
        "bulk_records_per_s": {"unsigned": round(n / bulk_plain, 1), "signed": round(n / bulk_signed, 1)},
        "bulk_time_ratio": round(bulk_signed / bulk_plain, 3),
        "hit_rps": {"unsigned": plain, "signed": signed},
        "hit_ratio_signed_over_unsigned": round(hit_ratio, 3),
    }))


if __name__ == "__main__":
    main()
