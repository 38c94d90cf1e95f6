"""Mirroring another node: a snapshot bootstrap with authenticity checked, then the lag under steady writes.

    python benchmarks/replication.py [--records 1000000] [--writes 1000] [--duration 20] [--verify sealed]

Sets up, as operators do with the CLI, a root (trust root, homes 0.0 and 88), an origin homing 88.101
with its key certified by the root, and a mirror; N signed records are loaded at the origin with COPY.
Every node runs one worker. Measured:

- bootstrap: from ``idres mirror add`` on the running mirror until it follows the origin's feed, every
  record taken in and checked against the root key (``--verify sealed``: by the origin's chunk seals;
  ``records``: every record's own signatures; ``none``: no trust root); records/s, and the peak RSS of
  the origin's and the mirror's worker processes over the bootstrap;
- the baseline of the same run: the same rows read from the origin's database and COPYed into another
  with no HTTP, JSON or checks (the floor a bootstrap is compared with);
- lag: W new records a second written at the origin for D seconds (signed and logged, as the origin
  writes them, ``--group`` to a transaction), each timed from its commit to its arrival in the mirror's
  change log; p50/p99, beside the time each takes to reach a LISTEN on the origin's own database (what
  cache invalidation waits for).

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from delegation import Node, certify, databases, idres
from harness import Server, load_records

from registry.model import Handle, HandleValue, Record
from registry.pg import db
from registry.pg.embedded import EmbeddedPostgres
from resolver.config import Settings
from resolver.keys.keyring import Keyring
from resolver.ops.provisioning import open_store

PREFIX = "88.101"
COLUMNS = ["handle", "spelled", "prefix", "vals", "public_json", "min_ttl", "expires_at", "sig_expires"]


def start(node: Node, *extra: str, env: dict[str, str] | None = None) -> list[int]:
    """``idres serve`` with one worker; the pids of its workers."""
    args = [sys.executable, "-m", "resolver", "serve", "--json", *node.opts(), "--data-dir", str(node.dir), "--port", "0",
            "--tls-port", "off", "--workers", "1", "--log-level", "warning", "--allow-http-auth", *extra]
    node.server = Server(args, env=env)
    ready = json.loads(node.server.wait_line(lambda line: '"ready"' in line))
    node.http = ready["http"]
    return ready["workerPids"]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def seed(node: Node, count: int) -> float:
    settings = Settings.load(env={}, dsn=node.dsn, keys_dir=node.keys)
    pool = await db.create_pool(node.dsn, max_size=2)
    try:
        started = time.perf_counter()
        await load_records(await open_store(settings, pool, Keyring(node.keys)), PREFIX, count, int(time.time()))
        return time.perf_counter() - started
    finally:
        await pool.close()


def setup(dsns: list[str], workdir: Path, count: int) -> tuple[Node, Node, Node, Path, float]:
    root, origin, mirror = (Node(n, d, workdir) for n, d in zip(("root", "origin", "mirror"), dsns))
    idres("keys", "generate", *root.opts())
    for prefix in ("0.0", "88"):
        idres("prefix", "home", prefix, *root.opts())
    idres("keys", "certify", "--root", *root.opts())
    certify(root, origin, PREFIX)
    trust = workdir / "root.json"
    trust.write_text(json.dumps(idres("keys", "export", *root.opts())))
    seconds = asyncio.run(seed(origin, count))
    return root, origin, mirror, trust, seconds


# --- bootstrap -----------------------------------------------------------------------------------


async def following(dsn: str) -> bool:
    async with db.connection(dsn) as conn:
        return await conn.fetchval("SELECT state = 'following' FROM mirrors WHERE prefix = $1", PREFIX) or False


def bootstrap(origin: Node, mirror: Node, trust: Path, workdir: Path, args, origin_pid: int, mirror_pid: int) -> dict:
    admin = idres("admin", "create", "--prefix", PREFIX, "--handle", "MIRROR", *origin.opts())
    secret = workdir / "mirror.secret"
    secret.write_text(admin["password"])
    verify = [] if args.verify == "none" else ["--trust-root", str(trust)]
    started = time.perf_counter()
    idres("mirror", "add", "--from", origin.http, "--prefix", PREFIX, "--user", admin["user"], "--password-file", str(secret),
          *verify, *mirror.opts())
    while not asyncio.run(following(mirror.dsn)):
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    return {"records": args.records, "seconds": round(seconds, 2), "records_per_s": round(args.records / seconds),
            "origin_peak_rss_mb": peak_rss_mb(origin_pid), "mirror_peak_rss_mb": peak_rss_mb(mirror_pid)}


async def raw_copy(source: str, target: str) -> dict:
    """The floor: the origin's rows read and COPYed into another database, a transaction per 1000 rows."""
    started = time.perf_counter()
    count = 0
    async with db.connection(source) as src, db.connection(target) as dst, src.transaction(isolation="repeatable_read"):
        batch = []
        async for row in src.cursor(f"SELECT {', '.join(COLUMNS)} FROM handles WHERE prefix = $1", PREFIX, prefetch=1000):
            batch.append(tuple(row))
            if len(batch) == 1000:
                count += await _copy(dst, batch)
                batch = []
        count += await _copy(dst, batch)
    seconds = time.perf_counter() - started
    return {"records": count, "seconds": round(seconds, 2), "records_per_s": round(count / seconds)}


async def _copy(conn, rows: list[tuple]) -> int:
    if rows:
        async with conn.transaction():
            await conn.copy_records_to_table("handles", records=rows, columns=COLUMNS)
            await conn.fetchval("SELECT log_changes($1::text[], 1::smallint)", [r[0] for r in rows])
    return len(rows)


# --- lag -----------------------------------------------------------------------------------------


class Arrivals:
    """When each new handle shows in a database's change log, through LISTEN on it."""

    def __init__(self, dsn: str) -> None:
        self.dsn, self.seen, self._cursor, self._wake = dsn, {}, 0, asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        async with db.connection(self.dsn) as conn:
            self._cursor = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
            await conn.add_listener("idres_changes", lambda *_: self._wake.set())
            while not stop.is_set():
                await asyncio.wait([asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())],
                                   timeout=1, return_when=asyncio.FIRST_COMPLETED)
                self._wake.clear()
                rows = await conn.fetch("SELECT seq, handle FROM changes WHERE seq > $1 ORDER BY seq", self._cursor)
                now = time.perf_counter()
                for row in rows:
                    self.seen.setdefault(row["handle"], now)
                    self._cursor = row["seq"]


async def write_steadily(dsn: str, keys: Path, rate: int, duration: float, group: int, committed: dict) -> None:
    """``rate`` new records a second, ``group`` to a transaction, as the origin's own writes are made."""
    settings = Settings.load(env={}, dsn=dsn, keys_dir=keys)
    pool = await db.create_pool(dsn, max_size=16)
    store = await open_store(settings, pool, Keyring(keys))
    limit, tasks = asyncio.Semaphore(64), []

    async def one(first: int) -> None:
        async with limit:
            now = int(time.time())
            records = [Record(Handle.parse(f"{PREFIX}/LAG-{n:07d}"), (HandleValue(1, "URL", f"https://x/{n}".encode(), timestamp=now),))
                       for n in range(first, first + group)]
            await (store.create(records[0]) if group == 1 else store.bulk_create(records))
            done = time.perf_counter()
            committed.update((r.handle.key, done) for r in records)

    started = time.perf_counter()
    for first in range(0, int(rate * duration), group):
        await asyncio.sleep(max(0.0, started + first / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(first)))
    await asyncio.gather(*tasks)
    await pool.close()


def percentiles(delays: list[float]) -> tuple[float, float]:
    delays = sorted(delays)
    pick = lambda q: round(delays[min(len(delays) - 1, int(q * len(delays)))] * 1000, 1) if delays else float("nan")  # noqa: E731
    return pick(0.50), pick(0.99)


async def lag(origin: Node, mirror: Node, rate: int, duration: float, group: int) -> dict:
    committed: dict[str, float] = {}
    stop = asyncio.Event()
    at_mirror, at_origin = Arrivals(mirror.dsn), Arrivals(origin.dsn)
    watchers = [asyncio.create_task(a.run(stop)) for a in (at_mirror, at_origin)]
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    await write_steadily(origin.dsn, origin.keys, rate, duration, group, committed)
    achieved = len(committed) / (time.perf_counter() - started)
    deadline = time.perf_counter() + 30
    while len(set(committed) & set(at_mirror.seen)) < len(committed) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*watchers)
    mirror_p = percentiles([at_mirror.seen[k] - t for k, t in committed.items() if k in at_mirror.seen])
    local_p = percentiles([max(0.0, at_origin.seen[k] - t) for k, t in committed.items() if k in at_origin.seen])
    return {"writes_per_s": round(achieved), "writes": len(committed), "arrived": len(set(committed) & set(at_mirror.seen)),
            "lag_p50_ms": mirror_p[0], "lag_p99_ms": mirror_p[1], "local_notify_p50_ms": local_p[0], "local_notify_p99_ms": local_p[1]}


# --- main ----------------------------------------------------------------------------------------


def report(args, seed_s: float, boot: dict, floor: dict, steady: dict) -> None:
    print(f"\nreplication benchmark: {args.records} signed records, verify {args.verify}, gzip {args.gzip}, "
          f"{os.cpu_count()} CPUs (seeded in {seed_s:.0f} s)\n")
    print(f"{'measure':48} {'value':>12}")
    rows = [("bootstrap seconds", boot["seconds"]), ("bootstrap records/s", boot["records_per_s"]),
            ("baseline: raw COPY between databases, records/s", floor["records_per_s"]),
            ("bootstrap / baseline time", round(boot["seconds"] / floor["seconds"], 2)),
            ("origin worker peak RSS (MB)", boot["origin_peak_rss_mb"]), ("mirror worker peak RSS (MB)", boot["mirror_peak_rss_mb"]),
            (f"writes/s at the origin (asked {args.writes}, {args.group} a commit)", steady["writes_per_s"]),
            ("lag p50 (ms)", steady["lag_p50_ms"]), ("lag p99 (ms)", steady["lag_p99_ms"]),
            ("baseline: origin's own NOTIFY p50 (ms)", steady["local_notify_p50_ms"]),
            ("baseline: origin's own NOTIFY p99 (ms)", steady["local_notify_p99_ms"])]
    for name, value in rows:
        print(f"{name:48} {value:>12}")
    print(json.dumps({"benchmark": "replication", "records": args.records, "verify": args.verify, "gzip": args.gzip, "group": args.group,
                      "cpus": os.cpu_count(), "seed_s": round(seed_s, 1), "bootstrap": boot, "baseline_copy": floor, "lag": steady}))


def run(args, workdir: Path, nodes: list) -> None:
    embedded = EmbeddedPostgres(workdir / "pg")
    root_dsn = embedded.start()
    nodes.append(embedded)
    dsns = asyncio.run(databases(root_dsn, ["root", "origin", "mirror", "scratch"]))
    root, origin, mirror, trust, seed_s = setup(dsns[:3], workdir, args.records)
    nodes[:0] = [root, origin, mirror]
    verify = ("--trust-root", str(trust))
    start(root, *verify)
    (origin_pid,) = start(origin, *verify, "--root-node", root.http)
    env = {"IDRES_MIRROR_POLL_INTERVAL": "0.2", "IDRES_MIRROR_GZIP": str(args.gzip).lower(),
           "IDRES_MIRROR_VERIFY": "records" if args.verify == "records" else "sealed"}
    (mirror_pid,) = start(mirror, *(verify if args.verify != "none" else ()), env=env)
    boot = bootstrap(origin, mirror, trust, workdir, args, origin_pid, mirror_pid)
    floor = asyncio.run(raw_copy(origin.dsn, dsns[3]))
    steady = asyncio.run(lag(origin, mirror, args.writes, args.duration, args.group))
    report(args, seed_s, boot, floor, steady)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records the mirror bootstraps from")
    parser.add_argument("--writes", type=int, default=1000, help="new records a second at the origin while the lag is measured")
    parser.add_argument("--duration", type=float, default=20, help="seconds of steady writes")
    parser.add_argument("--group", type=int, default=10, help="writes per transaction at the origin (1: one each)")
    parser.add_argument("--verify", choices=["sealed", "records", "none"], default="sealed", help="how the mirror checks records")
    parser.add_argument("--gzip", action=argparse.BooleanOptionalAction, default=True, help="the mirror asks for gzip (default)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="idres-bench-"))
    nodes: list = []
    try:
        run(args, workdir, nodes)
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
