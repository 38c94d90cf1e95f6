"""Registration throughput: importing N identifiers through a running node and straight into PostgreSQL,
and authenticated single PUTs over HTTPS, against a bare baseline measured in the same run.

    python benchmarks/registration.py [--records 1000000] [--duration 10] [--connections 16] [--workers 2]
                                      [--reference CHECKOUT]

Writes a CSV of N serial numbers with three values each, then measures:
  * ``idres import --node`` through ``idres serve`` (HTTPS, Basic, signed records);
  * ``idres import --dsn`` (COPY, signed records) into an emptied database;
  * single PUTs of new handles (three values, HTTP Basic over HTTPS, signed) from ``--connections``
    concurrent clients, with wrk when installed or a built-in aiohttp loader; and, as the baseline, the
    same requests against a bare aiohttp HTTPS handler that checks the Basic header, parses the body and
    INSERTs one row per request into the same PostgreSQL.
With ``--reference DIR`` (a checkout of idres from before a change, e.g. ``git worktree add /tmp/before
main``) the same PUT load also runs against that code, in a database of its own. Peak RSS of the
importer and of the node's processes is sampled while each import runs. Prints a table and one JSON
line.
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
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import ROOT, free_port
from registration_load import BASELINE_WRITER, drive_puts, reference_puts, start_process, wait_ready
from registry.pg import db
from registry.pg.embedded import EmbeddedPostgres

PREFIX = "88.101.5"


@dataclass
class Row:
    scenario: str
    count: int
    seconds: float
    rate: float
    client_rss_mb: float | None = None
    server_rss_mb: float | None = None
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None


def write_csv(path: Path, count: int) -> None:
    with open(path, "w") as out:
        out.write("suffix,URL,SERIAL,MODEL\n")
        for n in range(1, count + 1):
            out.write(f"SN-{n:07d},https://example.com/p/{n},S{n:07d},WM-7030\n")


def idres(*args: str, env: dict | None = None) -> list[str]:
    return [sys.executable, "-m", "resolver", *args]


def _tree_rss(process) -> float:
    """MB of resident memory of a process and its children (the importer's signing processes, a node's workers)."""
    import psutil

    total = 0.0
    try:
        for member in [process, *process.children(recursive=True)]:
            total += member.memory_info().rss / 2**20
    except psutil.Error:
        pass
    return total


def run_sampled(command: list[str], server_pid: int | None, env: dict) -> tuple[float, float, float | None, int]:
    """Run ``command``; (seconds, its peak RSS MB with its children, the server's peak RSS MB with its
    workers, exit code)."""
    import psutil
    import subprocess

    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    watched = psutil.Process(proc.pid)
    server = psutil.Process(server_pid) if server_pid is not None else None
    client_peak = server_peak = 0.0
    while proc.poll() is None:
        client_peak = max(client_peak, _tree_rss(watched))
        if server is not None:
            server_peak = max(server_peak, _tree_rss(server))
        time.sleep(0.05)
    return time.perf_counter() - started, client_peak, server_peak if server is not None else None, proc.returncode


async def prepare(dsn: str, workdir: Path) -> tuple[str, str]:
    """Schema, the prefix homed, an admin; (identity, secret)."""
    from registry.pg.migrate import migrate
    from registry.pg.store import Store
    from resolver.config import Settings
    from resolver.keys.site import site_of
    from resolver.ops.provisioning import create_prefix_admin, home_prefix, node_keyring

    async with db.connection(dsn) as conn:
        await migrate(conn)
        await conn.execute("TRUNCATE handles, prefixes, changes, batches, batch_chunks, sessions, rate_counts CASCADE")
    settings = Settings.load(env={}, keys_dir=workdir / "keys")
    now = int(time.time())
    keyring = node_keyring(settings, now)
    pool = await db.create_pool(dsn, max_size=2)
    try:
        store = Store(pool)
        await home_prefix(store, site_of(settings, keyring), PREFIX, now, keyring)
        admin = await create_prefix_admin(store, PREFIX, now)
    finally:
        await pool.close()
    return str(admin.identity), admin.secret


async def empty(dsn: str, like: str) -> None:
    async with db.connection(dsn) as conn:
        await conn.execute("DELETE FROM handles WHERE handle LIKE $1", like)
        await conn.execute("TRUNCATE batches, batch_chunks CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="identifiers to import")
    parser.add_argument("--duration", type=int, default=10, help="seconds of single PUTs per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--loader", choices=["wrk", "builtin"], default="wrk" if shutil.which("wrk") else "builtin")
    parser.add_argument("--dsn", help="use this PostgreSQL (its idres schema is emptied) instead of an embedded one")
    parser.add_argument("--reference", type=Path, help="a checkout of another idres (e.g. before a change): its single "
                                                        "PUTs are measured in the same run, in a database of their own")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="idres-bench-"))
    embedded = EmbeddedPostgres(workdir) if args.dsn is None else None
    dsn = embedded.start() if embedded else args.dsn
    try:
        rows = run(dsn, args, workdir)
    finally:
        if embedded:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(rows, args)


def run(dsn: str, args: argparse.Namespace, workdir: Path) -> list[Row]:
    user, secret = asyncio.run(prepare(dsn, workdir))
    (workdir / "secret").write_text(secret)
    csv = workdir / "serials.csv"
    write_csv(csv, args.records)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("IDRES_")}, "PYTHONPATH": str(ROOT)}
    rows = [import_through_node(dsn, args, workdir, csv, user, env)]
    asyncio.run(empty(dsn, f"{PREFIX}/SN-%"))
    seconds, client_rss, _, code = run_sampled(
        idres("import", str(csv), "--prefix", PREFIX, "--dsn", dsn, "--keys-dir", str(workdir / "keys"), "--quiet",
              "--batch-size", str(args.batch_size), "--restart"), None, env)
    rows.append(Row("import --dsn (COPY, signed)", args.records, round(seconds, 2), round(args.records / seconds, 1),
                    round(client_rss, 1), None, 0 if code == 0 else 1))
    rows.extend(single_puts(dsn, args, workdir, user, secret, env))
    if args.reference is not None:
        rows.append(reference_puts(dsn, args.reference.resolve(), args, workdir))
    return rows


def import_through_node(dsn: str, args: argparse.Namespace, workdir: Path, csv: Path, user: str, env: dict) -> Row:
    server, ready = start_process(idres("serve", "--json", "--dsn", dsn, "--data-dir", str(workdir / "node"), "--keys-dir",
                                        str(workdir / "keys"), "--port", "0", "--tls-port", "0", "--workers", str(args.workers),
                                        "--log-level", "warning"), env)
    try:
        seconds, client_rss, server_rss, code = run_sampled(
            idres("import", str(csv), "--prefix", PREFIX, "--node", ready["https"], "--user", user, "--password-file",
                  str(workdir / "secret"), "--insecure", "--quiet", "--batch-size", str(args.batch_size)),
            server.proc.pid, env)
    finally:
        server.stop()
    return Row(f"import --node ({args.workers} workers, signed)", args.records, round(seconds, 2),
               round(args.records / seconds, 1), round(client_rss, 1), round(server_rss or 0, 1), 0 if code == 0 else 1)


def single_puts(dsn: str, args: argparse.Namespace, workdir: Path, user: str, secret: str, env: dict) -> list[Row]:
    rows = []
    port = free_port()
    script = workdir / "baseline_writer.py"
    script.write_text(BASELINE_WRITER)
    cert = workdir / "node" / "tls"
    baseline, _ = start_process([sys.executable, str(script), dsn, str(port), str(cert / "cert.pem"), str(cert / "key.pem")], env,
                                ready=lambda line: line.startswith("ready"))
    try:
        wait_ready(f"https://127.0.0.1:{port}/")
        rows.append(drive_puts("baseline (aiohttp + one INSERT)", 1, f"https://127.0.0.1:{port}", "B", user, secret, args, workdir))
    finally:
        baseline.stop()
    server, ready = start_process(idres("serve", "--json", "--dsn", dsn, "--data-dir", str(workdir / "node"), "--keys-dir",
                                        str(workdir / "keys"), "--port", "0", "--tls-port", "0", "--workers", str(args.workers),
                                        "--log-level", "warning"), env)
    try:
        rows.append(drive_puts("single PUT (Basic, signed)", args.workers, ready["https"], "P", user, secret, args, workdir))
    finally:
        server.stop()
    return rows


def report(rows: list[Row], args: argparse.Namespace) -> None:
    print(f"\nregistration benchmark: {args.records:,} identifiers (three values each), {args.connections} PUT clients for "
          f"{args.duration} s, loader {args.loader}, {os.cpu_count()} CPUs\n")
    print(f"{'scenario':40} {'count':>9} {'seconds':>8} {'per s':>9} {'client MB':>9} {'server MB':>9} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for r in rows:
        fmt = lambda v, spec: format(v, spec) if v is not None else "-"  # noqa: E731
        print(f"{r.scenario:40} {r.count:>9} {r.seconds:>8.2f} {r.rate:>9.0f} {fmt(r.client_rss_mb, '>9.0f'):>9} "
              f"{fmt(r.server_rss_mb, '>9.0f'):>9} {r.errors:>6} {fmt(r.p50_ms, '>7.2f'):>7} {fmt(r.p99_ms, '>7.2f'):>7}")
    baseline = next((r.rate for r in rows if r.scenario.startswith("baseline")), None)
    puts = next((r.rate for r in rows if r.scenario.startswith("single PUT")), None)
    reference = next((r.rate for r in rows if r.scenario.startswith("reference")), None)
    if baseline and puts:
        print(f"\nsingle PUT / baseline = {puts / baseline:.2f}" + (f", single PUT / reference = {puts / reference:.2f}" if reference else "") + "\n")
    print(json.dumps({"benchmark": "registration", "records": args.records, "connections": args.connections,
                      "duration_s": args.duration, "workers": args.workers, "loader": args.loader, "cpus": os.cpu_count(),
                      "put_over_baseline": round(puts / baseline, 3) if baseline and puts else None,
                      "put_over_reference": round(puts / reference, 3) if reference and puts else None,
                      "results": [asdict(r) for r in rows]}))


if __name__ == "__main__":
    main()
