"""Resolution throughput: cache hits, cold reads and not-found answers, against a bare aiohttp baseline.

    python benchmarks/resolve.py [--handles 100000] [--duration 10] [--connections 64] [--metrics-rounds 2]

Seeds N product identifiers with COPY into an embedded PostgreSQL (or --dsn), starts real
``idres serve`` processes, and drives random GETs over keep-alive connections with wrk (when
installed) or a built-in aiohttp load generator. In the same run it measures a bare aiohttp handler
serving the same response bytes from a dict: the baseline the cache-hit path is compared with. The
cost of metrics on the hit path is measured with two one-worker nodes, metrics on and off
(``IDRES_METRICS=false``), measured in turns. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from harness import Result, measure, seed, served_bodies, start_baseline, start_idres, warm

from registry.pg.embedded import EmbeddedPostgres


METRICS_ON, METRICS_OFF = "cache hit, metrics on", "cache hit, metrics off"


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handles", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the default worker count to measure")
    parser.add_argument("--loader", choices=["wrk", "builtin"], default="wrk" if shutil.which("wrk") else "builtin")
    parser.add_argument("--dsn", help="use this PostgreSQL (its idres schema is emptied) instead of an embedded one")
    parser.add_argument("--metrics-rounds", type=int, default=2, help="turns of cache hits with metrics on, then off")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="idres-bench-"))
    embedded = EmbeddedPostgres(workdir) if args.dsn is None else None
    dsn = embedded.start() if embedded else args.dsn
    keys = workdir / "keys"  # records are signed, as a node writes them; the node signs with the same key
    try:
        seed_seconds = asyncio.run(seed(dsn, args.handles, keys))
        results = run_scenarios(dsn, keys, args, workdir)
    finally:
        if embedded:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, args, seed_seconds)


def run_scenarios(dsn: str, keys: Path, args: argparse.Namespace, workdir: Path) -> list[Result]:
    """The baseline, then idres with the cache on (hits, negative hits) and off (cold reads)."""
    server, url = start_baseline(asyncio.run(served_bodies(dsn)), workdir)
    try:
        results = [measure("baseline (bare aiohttp, dict)", 1, url, args, workdir)]
    finally:
        server.stop()
    for workers in sorted({1, args.workers}):
        server, url = start_idres(dsn, workers, cache=True, keys_dir=keys)
        try:
            warm(url, args.handles, workers)
            results.append(measure("cache hit", workers, url, args, workdir))
            warm(url, args.handles, workers, missing=True)  # negative entries live 60 s: warmed just before their run
            results.append(measure("not found (negative cache)", workers, url, args, workdir, missing=True))
        finally:
            server.stop()
    results += metrics_cost(dsn, keys, args, workdir)
    for workers in sorted({1, args.workers}):
        server, url = start_idres(dsn, workers, cache=False, keys_dir=keys)
        try:
            results.append(measure("cold read (cache off)", workers, url, args, workdir))
            results.append(measure("not found (cache off)", workers, url, args, workdir, missing=True))
        finally:
            server.stop()
    return results


def metrics_cost(dsn: str, keys: Path, args: argparse.Namespace, workdir: Path) -> list[Result]:
    """Cache hits on one worker with metrics on and off, measured in turns (on, off, on, off, ...)."""
    nodes = {label: start_idres(dsn, 1, cache=True, keys_dir=keys, extra_env={"IDRES_METRICS": value})
             for label, value in ((METRICS_ON, "true"), (METRICS_OFF, "false"))}
    try:
        for _, url in nodes.values():
            warm(url, args.handles, 1)
        return [measure(label, 1, url, args, workdir)
                for _ in range(args.metrics_rounds) for label, (_, url) in nodes.items()]
    finally:
        for server, _ in nodes.values():
            server.stop()


def mean_rps(results: list[Result], scenario: str) -> float:
    runs = [r.rps for r in results if r.scenario == scenario]
    return sum(runs) / len(runs)


def report(results: list[Result], args: argparse.Namespace, seed_seconds: float) -> None:
    baseline = results[0].rps
    hit1 = next(r.rps for r in results if r.scenario == "cache hit" and r.workers == 1)
    metrics_ratio = mean_rps(results, METRICS_ON) / mean_rps(results, METRICS_OFF)
    print(f"\nresolve benchmark: {args.handles} signed handles seeded with COPY in {seed_seconds:.1f} s; loader {args.loader}, "
          f"{args.connections} connections, {args.duration:.0f} s per scenario, {os.cpu_count()} CPUs\n")
    print(f"{'scenario':34} {'workers':>7} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs baseline':>11}")
    for r in results:
        print(f"{r.scenario:34} {r.workers:>7} {r.rps:>10.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7} {r.rps / baseline:>11.2f}")
    print(f"\ncache hit (1 worker) / baseline = {hit1 / baseline:.2f}")
    print(f"cache hits with metrics on / off (means of {args.metrics_rounds} turns) = {metrics_ratio:.3f}\n")
    print(json.dumps({
        "benchmark": "resolve",
        "handles": args.handles,
        "loader": args.loader,
        "connections": args.connections,
        "duration_s": args.duration,
        "cpus": os.cpu_count(),
        "seed_seconds": round(seed_seconds, 2),
        "hit_over_baseline": round(hit1 / baseline, 3),
        "metrics_on_over_off": round(metrics_ratio, 3),
        "results": [asdict(r) for r in results],
    }))


if __name__ == "__main__":
    main()
