"""What the benchmarks share: seeding, starting servers, driving load with wrk or aiohttp, measuring."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry.pg import db  # noqa: E402
from registry.pg.migrate import migrate  # noqa: E402
from resolver.config import Settings  # noqa: E402
from resolver.ops.demo import demo_record  # noqa: E402
from resolver.ops.provisioning import home_prefix, node_keyring, open_store  # noqa: E402
from resolver.keys.site import SiteDescription  # noqa: E402

PREFIX = "88.101.5"
CHUNK = 10_000


@dataclass
class Result:
    scenario: str
    workers: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# --- data ----------------------------------------------------------------------------------------


async def seed(dsn: str, count: int, keys_dir: Path | None) -> float:
    """N demo records loaded with COPY, signed with the keys in ``keys_dir`` (unsigned when None), as a
    node serving them with the same keys would have written them; returns the seconds it took."""
    async with db.connection(dsn) as conn:
        await migrate(conn)
        await conn.execute("TRUNCATE handles, prefixes, changes")
    settings = Settings.load(env={}, keys_dir=keys_dir, signing=keys_dir is not None)
    now = int(time.time())
    keyring = node_keyring(settings, now)
    pool = await db.create_pool(dsn, max_size=2)
    try:
        store = await open_store(settings, pool, keyring)
        await home_prefix(store, SiteDescription(settings), PREFIX, now, keyring)
        started = time.perf_counter()
        await load_records(store, PREFIX, count, now)
        return time.perf_counter() - started
    finally:
        await pool.close()


async def load_records(store, prefix: str, count: int, now: int) -> None:
    """``prefix/SN-000001`` … with COPY: demo product records (the store signs them if it signs)."""
    for start in range(1, count + 1, CHUNK):
        await store.bulk_create(product_record(prefix, n, now) for n in range(start, min(start + CHUNK, count + 1)))


def product_record(prefix: str, n: int, now: int):
    """A demo product record under ``prefix``."""
    record = demo_record(n, now)
    if prefix == PREFIX:
        return record
    from registry.model import Handle

    return record.__class__(Handle.parse(f"{prefix}/{suffix(n)}"), record.values)


async def served_bodies(dsn: str) -> dict[str, bytes]:
    """The exact bytes a node serves for each record (from the stored rows), keyed as requested."""
    async with db.connection(dsn) as conn:
        rows = await conn.fetch("SELECT spelled, public_json FROM handles WHERE prefix = $1", PREFIX)
    return {r["spelled"]: b'{"responseCode":1,"handle":' + json.dumps(r["spelled"]).encode() + b',"values":' + r["public_json"] + b"}" for r in rows}


def suffix(n: int) -> str:
    return f"SN-{n:06d}"


# --- servers -------------------------------------------------------------------------------------

BASELINE = r'''
import sys, pickle, asyncio, uvloop
from aiohttp import web
bodies = pickle.load(open(sys.argv[1], "rb"))
async def handle(request):
    body = bodies.get(request.match_info["handle"])
    if body is None:
        return web.Response(status=404, body=b'{"responseCode":100}', content_type="application/json")
    return web.Response(body=body, content_type="application/json")
app = web.Application()
app.router.add_get("/api/handles/{handle:.*}", handle)
uvloop.install()
print("ready", flush=True)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
'''


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})})

    def wait_line(self, predicate) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if predicate(line):
                return line
        raise RuntimeError("server exited before it was ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_idres(dsn: str, workers: int, cache: bool, keys_dir: Path | None,
                extra_env: dict[str, str] | None = None) -> tuple[Server, str]:
    """``idres serve`` on the seeded database; signing with ``keys_dir`` (off when None)."""
    args = [sys.executable, "-m", "resolver", "serve", "--json", "--dsn", dsn, "--port", "0", "--tls-port", "off",
            "--workers", str(workers), "--log-level", "warning"]
    env = {"IDRES_CACHE_ENABLED": "true" if cache else "false", "IDRES_SIGNING": "true" if keys_dir else "false"}
    if keys_dir is not None:
        env["IDRES_KEYS_DIR"] = str(keys_dir)
    server = Server(args, env={**env, **(extra_env or {})})
    ready = json.loads(server.wait_line(lambda line: '"ready"' in line))
    return server, ready["http"]


def start_baseline(bodies: dict[str, bytes], workdir: Path) -> tuple[Server, str]:
    import pickle

    data = workdir / "bodies.pickle"
    data.write_bytes(pickle.dumps(bodies))
    script = workdir / "baseline.py"
    script.write_text(BASELINE)
    port = free_port()
    server = Server([sys.executable, str(script), str(data), str(port)])
    server.wait_line(lambda line: line.startswith("ready"))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + f"/api/handles/{PREFIX}/{suffix(1)}")
    return server, url


def wait_http(url: str, deadline: float = 30.0) -> None:
    import urllib.error
    import urllib.request

    end = time.monotonic() + deadline
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


# --- load ----------------------------------------------------------------------------------------

# wrk's summary as one line the scripts read: RESULT requests seconds p50_ms p99_ms errors
WRK_DONE = r'''
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %%d %%f %%f %%f %%d\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
'''

WRK_SCRIPT = r'''
local count = %d
local prefix = "%s"
local missing = %s
local sequential = %s
local seeded = false
local next_n = 0
request = function()
  if not seeded then math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)); seeded = true end
  local n = math.random(1, count)
  if sequential then next_n = next_n %% count + 1; n = next_n end
  if missing then
    return wrk.format("GET", string.format("/api/handles/%%s/NO-%%06d", prefix, n))
  end
  return wrk.format("GET", string.format("/api/handles/%%s/SN-%%06d", prefix, n))
end
''' + WRK_DONE


def run_wrk(url: str, count: int, missing: bool, duration: float, connections: int, threads: int, workdir: Path,
            prefix: str = PREFIX, sequential: bool = False) -> tuple[int, float, float, float, int]:
    """wrk on random handles of ``prefix`` (``sequential``: each handle once, in order, so that none is cached)."""
    script = workdir / f"load-{'missing' if missing else 'found'}.lua"
    script.write_text(WRK_SCRIPT % (count, prefix, "true" if missing else "false", "true" if sequential else "false"))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    requests, seconds, p50, p99, errors = line.split()[1:]
    if missing:
        errors = "0"  # every answer is a 404 by design; wrk counts non-2xx as errors
    return int(requests), float(seconds), float(p50), float(p99), int(errors)


async def builtin_load(url: str, count: int, missing: bool, duration: float, connections: int,
                       prefix: str = PREFIX) -> tuple[int, float, float, float, int]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    expected = 404 if missing else 200
    stop_at = time.monotonic() + duration

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        rng = random.Random()
        while time.monotonic() < stop_at:
            n = rng.randint(1, count)
            path = f"/api/handles/{prefix}/{'NO' if missing else 'SN'}-{n:06d}"
            start = time.perf_counter()
            async with session.get(url + path) as resp:
                await resp.read()
                if resp.status != expected:
                    errors += 1
            latencies.append(time.perf_counter() - start)

    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        await asyncio.gather(*(one(session) for _ in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return len(latencies), elapsed, pick(0.50), pick(0.99), errors


def measure(name: str, workers: int, url: str, args, workdir: Path, missing: bool = False, prefix: str = PREFIX,
            sequential: bool = False) -> Result:
    if args.loader == "wrk":
        requests, seconds, p50, p99, errors = run_wrk(url, args.handles, missing, args.duration, args.connections, args.threads,
                                                      workdir, prefix, sequential)
    else:
        requests, seconds, p50, p99, errors = asyncio.run(builtin_load(url, args.handles, missing, args.duration, args.connections, prefix))
    return Result(name, workers, requests, round(requests / seconds, 1), round(p50, 3), round(p99, 3), errors)


WARM_SESSIONS_PER_WORKER = 8


async def _pinned_sessions(url: str, workers: int) -> dict[int, list]:
    """Keep-alive sessions of one connection each, grouped by the worker that holds the connection."""
    import aiohttp

    per_worker = WARM_SESSIONS_PER_WORKER
    groups: dict[int, list[aiohttp.ClientSession]] = {}
    for _ in range(workers * per_worker * 20):
        if len(groups) == workers and all(len(g) >= per_worker for g in groups.values()):
            break
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        async with session.get(url + "/readyz") as resp:
            pid = (await resp.json())["pid"]
        if len(groups.get(pid, [])) >= per_worker:
            await session.close()
        else:
            groups.setdefault(pid, []).append(session)
    return groups


async def _request_all(url: str, sessions: list, count: int, missing: bool, prefix: str = PREFIX) -> None:
    """Every seeded handle (or not-found name) once, spread over ``sessions``."""
    queue = iter(range(1, count + 1))

    async def worker(session) -> None:
        for n in queue:
            name = f"NO-{n:06d}" if missing else suffix(n)
            async with session.get(f"{url}/api/handles/{prefix}/{name}") as resp:
                await resp.read()

    await asyncio.gather(*(worker(s) for s in sessions))


def warm(url: str, count: int, workers: int = 1, missing: bool = False, prefix: str = PREFIX) -> None:
    """Request every seeded handle (or, ``missing``, every not-found name of the run) once through each
    worker, so that the cache-hit runs hit whichever worker the kernel hands a connection to."""

    async def go() -> None:
        groups = await _pinned_sessions(url, workers)
        try:
            for sessions in groups.values():
                await _request_all(url, sessions, count, missing, prefix)
        finally:
            for sessions in groups.values():
                for session in sessions:
                    await session.close()

    asyncio.run(go())
