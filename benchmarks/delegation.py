"""Resolution through the root of records served by other nodes, against a local cache hit in the same run.

    python benchmarks/delegation.py [--handles 50000] [--duration 10] [--connections 64]

Sets up three tiers as operators do, with the CLI: a root (trust root, homes 0.0 and 88), a sector
node (88.101) and an enterprise node (88.101.5), keys certified down from the root; the root delegates
88.101 to the sector node, which delegates 88.101.5 to the enterprise node. N signed records are loaded
with COPY at the sector and at the enterprise. Every node runs one worker and verifies what it relays
against the root key. Measured with wrk (or the built-in loader), random handles:

- local hit: the sector node answering its own records from its cache (the reference);
- cached at the root: the root answering the sector's records from its cache;
- cold, one hop: the root asked for each record once, in order (so it misses every time; wrk only),
  asking the sector, whose cache holds them;
- cold, two hops: the root asked for each enterprise record once: it misses, the sector misses, the
  enterprise answers from its store.

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from harness import Result, Server, load_records, measure, warm

from registry.pg import db
from registry.pg.embedded import EmbeddedPostgres
from registry.pg.migrate import migrate
from resolver.config import Settings
from resolver.keys.keyring import Keyring
from resolver.ops.provisioning import open_store


def idres(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "resolver", *args, "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class Node:
    def __init__(self, name: str, dsn: str, workdir: Path) -> None:
        self.name, self.dsn, self.keys = name, dsn, workdir / name / "keys"
        self.dir = workdir / name
        self.server: Server | None = None
        self.http = ""

    def opts(self) -> list[str]:
        return ["--dsn", self.dsn, "--keys-dir", str(self.keys)]

    def start(self, *extra: str) -> None:
        args = [sys.executable, "-m", "resolver", "serve", "--json", *self.opts(), "--data-dir", str(self.dir), "--port", "0",
                "--tls-port", "off", "--workers", "1", "--log-level", "warning", *extra]
        self.server = Server(args)
        self.http = json.loads(self.server.wait_line(lambda line: '"ready"' in line))["http"]

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


async def databases(root_dsn: str, names: list[str]) -> list[str]:
    async with db.connection(root_dsn) as conn:
        for name in names:
            await conn.execute(f"CREATE DATABASE {name}")
    made = [urlunsplit(urlsplit(root_dsn)._replace(path="/" + name)) for name in names]
    for dsn in made:
        async with db.connection(dsn) as conn:
            await migrate(conn)
    return made


def certify(parent: Node, child: Node, prefix: str) -> None:
    idres("keys", "generate", *child.opts())
    idres("prefix", "home", prefix, *child.opts())
    key = child.dir / "key.json"
    key.write_text(json.dumps(idres("keys", "export", *child.opts())))
    cert = child.dir / "cert.jws"
    idres("keys", "certify", prefix, "--key", str(key), "--out", str(cert), *parent.opts())
    idres("keys", "install-cert", str(cert), *child.opts())


async def seed(node: Node, prefix: str, count: int) -> None:
    settings = Settings.load(env={}, dsn=node.dsn, keys_dir=node.keys)
    pool = await db.create_pool(node.dsn, max_size=2)
    try:
        await load_records(await open_store(settings, pool, Keyring(node.keys)), prefix, count, int(time.time()))
    finally:
        await pool.close()


def setup(dsns: list[str], workdir: Path, count: int) -> tuple[Node, Node, Node, Path]:
    root, sector, enterprise = (Node(n, d, workdir) for n, d in zip(("root", "sector", "enterprise"), dsns))
    idres("keys", "generate", *root.opts())
    for prefix in ("0.0", "88"):
        idres("prefix", "home", prefix, *root.opts())
    idres("keys", "certify", "--root", *root.opts())
    certify(root, sector, "88.101")
    certify(sector, enterprise, "88.101.5")
    trust = workdir / "root.json"
    trust.write_text(json.dumps(idres("keys", "export", *root.opts())))
    asyncio.run(seed(sector, "88.101", count))
    asyncio.run(seed(enterprise, "88.101.5", count))
    return root, sector, enterprise, trust


def scenarios(root: Node, sector: Node, enterprise: Node, trust: Path, args, workdir: Path) -> list[Result]:
    verify = ("--trust-root", str(trust))
    root.start(*verify)
    below = (*verify, "--root-node", root.http)
    enterprise.start(*below)
    sector.start(*below)
    idres("prefix", "delegate", "88.101", "--to", sector.http, *root.opts())
    idres("prefix", "delegate", "88.101.5", "--to", enterprise.http, *sector.opts())
    warm(sector.http, args.handles, prefix="88.101")
    results = [measure("local hit (sector node)", 1, sector.http, args, workdir, prefix="88.101")]
    results.append(measure("cold, one hop (root → sector)", 1, root.http, args, workdir, prefix="88.101", sequential=True))
    warm(root.http, args.handles, prefix="88.101")
    results.append(measure("cached at the root", 1, root.http, args, workdir, prefix="88.101"))
    results.append(measure("cold, two hops (root → sector → enterprise)", 1, root.http, args, workdir, prefix="88.101.5",
                           sequential=True))
    return results


def report(results: list[Result], args) -> None:
    local = results[0].rps
    print(f"\ndelegation benchmark: {args.handles} signed handles per node, loader {args.loader}, {args.connections} "
          f"connections, {args.duration} s per scenario, {os.cpu_count()} CPUs; every node verifies against the root key\n")
    print(f"{'scenario':46} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs local hit':>12}")
    for r in results:
        print(f"{r.scenario:46} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7} {r.rps / local:>12.2f}")
    print(json.dumps({"benchmark": "delegation", "handles": args.handles, "loader": args.loader, "connections": args.connections,
                      "duration_s": args.duration, "cpus": os.cpu_count(),
                      "root_cached_over_local_hit": round(results[2].rps / local, 3), "results": [asdict(r) for r in results]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handles", type=int, default=50_000, help="records per node; the cold runs need more than they ask")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--loader", choices=["wrk", "builtin"], default="wrk" if shutil.which("wrk") else "builtin")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="idres-bench-"))
    embedded = EmbeddedPostgres(workdir / "pg")
    nodes: tuple = ()
    try:
        dsns = asyncio.run(databases(embedded.start(), ["root", "sector", "enterprise"]))
        nodes = setup(dsns, workdir, args.handles)
        results = scenarios(*nodes, args, workdir)
    finally:
        for node in nodes[:3]:
            node.stop()
        embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, args)


if __name__ == "__main__":
    main()
