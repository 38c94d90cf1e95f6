"""Load for the registration benchmark: servers with a JSON ready line, the bare baseline writer, and
concurrent authenticated PUTs driven by wrk or by a built-in aiohttp loader."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from harness import WRK_DONE, Server

PREFIX = "88.101.5"

BASELINE_WRITER = r'''
import sys, ssl, base64, asyncio, asyncpg, orjson, uvloop
from aiohttp import web
dsn, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
state = {}
async def start(app):
    state["pool"] = await asyncpg.create_pool(dsn, min_size=8, max_size=8)
    await state["pool"].execute("DROP TABLE IF EXISTS bench_writes; CREATE TABLE bench_writes (handle text PRIMARY KEY, body bytea)")
async def put(request):
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic ") or b":" not in base64.b64decode(header[6:]):
        return web.Response(status=401)
    body = orjson.loads(await request.read())
    await state["pool"].execute("INSERT INTO bench_writes VALUES ($1, $2) ON CONFLICT DO NOTHING", request.match_info["h"], orjson.dumps(body))
    return web.Response(status=201, body=b'{"responseCode":1}', content_type="application/json")
async def ready(request):
    return web.Response(text="ok")
app = web.Application()
app.on_startup.append(start)
app.router.add_put("/api/handles/{h:.*}", put)
app.router.add_get("/", ready)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
uvloop.install()
print("ready", flush=True)
web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, access_log=None, print=None)
'''

WRK_PUTS = r'''
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
request = function()
  n = n + 1
  local path = string.format("/api/handles/%s-%%d-%%d", tid, n)
  local body = string.format('[{"index":1,"type":"URL","data":"https://example.com/p/%%d"},{"index":2,"type":"SERIAL","data":"S%%d"},{"index":3,"type":"MODEL","data":"WM-7030"}]', n, n)
  return wrk.format("PUT", path, {["Authorization"] = "%s", ["Content-Type"] = "application/json"}, body)
end
''' + WRK_DONE


def start_process(command: list[str], env: dict, ready=lambda line: '"ready"' in line) -> tuple[Server, dict]:
    server = Server(command, env=env)
    line = server.wait_line(ready)
    try:
        return server, json.loads(line)
    except ValueError:
        return server, {}


def wait_ready(url: str, deadline: float = 30.0) -> None:
    import urllib.request

    context = ssl._create_unverified_context()
    end = time.monotonic() + deadline
    while True:
        try:
            urllib.request.urlopen(url, timeout=2, context=context).read()
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{quote(user, safe='/')}:{secret}".encode()).decode()


def _wrk(url: str, tag: str, auth: str, args, workdir: Path) -> tuple[int, float, float, float, int]:
    script = workdir / f"puts-{tag}.lua"
    script.write_text(WRK_PUTS % (f"{PREFIX}/{tag}", auth))
    out = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    requests, seconds, p50, p99, errors = line.split()[1:]
    return int(requests), float(seconds), float(p50), float(p99), int(errors)


async def _builtin(url: str, tag: str, auth: str, args) -> tuple[int, float, float, float, int]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + args.duration

    async def one(client: aiohttp.ClientSession, worker: int) -> None:
        nonlocal errors
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            body = [{"index": 1, "type": "URL", "data": f"https://example.com/p/{n}"}, {"index": 2, "type": "SERIAL", "data": f"S{n}"},
                    {"index": 3, "type": "MODEL", "data": "WM-7030"}]
            started = time.perf_counter()
            async with client.put(f"{url}/api/handles/{PREFIX}/{tag}-{worker}-{n}", json=body, headers={"Authorization": auth}) as r:
                await r.read()
                errors += r.status not in (200, 201)
            latencies.append(time.perf_counter() - started)

    began = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False, limit=args.connections)) as client:
        await asyncio.gather(*(one(client, w) for w in range(args.connections)))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return len(latencies), time.monotonic() - began, pick(0.5), pick(0.99), errors


def drive_puts(name: str, workers: int, url: str, tag: str, user: str, secret: str, args, workdir: Path):
    from registration import Row

    auth = _basic(user, secret)
    if args.loader == "wrk":
        requests, seconds, p50, p99, errors = _wrk(url, tag, auth, args, workdir)
    else:
        requests, seconds, p50, p99, errors = asyncio.run(_builtin(url, tag, auth, args))
    return Row(f"{name}, {workers} worker{'s' if workers != 1 else ''}", requests, round(seconds, 2), round(requests / seconds, 1),
               errors=errors, p50_ms=round(p50, 3), p99_ms=round(p99, 3))



def reference_puts(dsn: str, code: Path, args, workdir: Path):
    """The single-PUT load against another checkout of idres (``--reference``, e.g. the code before a
    change), in a database of its own created, migrated and provisioned by that code."""
    import asyncio as _asyncio
    import os
    import sys

    import asyncpg

    async def create() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DROP DATABASE IF EXISTS reference WITH (FORCE)")
            await conn.execute("CREATE DATABASE reference")
        finally:
            await conn.close()
        return dsn.replace("/postgres?", "/reference?") if "/postgres?" in dsn else dsn.rsplit("/", 1)[0] + "/reference"

    target = _asyncio.run(create())
    # the reference's code comes first: PYTHONSAFEPATH keeps the working directory (this checkout) off sys.path
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("IDRES_")}, "PYTHONPATH": str(code), "PYTHONSAFEPATH": "1"}
    keys = workdir / "reference" / "keys"

    def idres(*command: str) -> str:
        done = subprocess.run([sys.executable, "-m", "resolver", *command], capture_output=True, text=True, env=env, cwd=workdir)
        if done.returncode != 0:
            raise RuntimeError(f"reference idres {command[0]} failed: {done.stderr}")
        return done.stdout

    idres("migrate", "--dsn", target)
    idres("prefix", "home", PREFIX, "--dsn", target, "--keys-dir", str(keys))
    admin = json.loads(idres("admin", "create", "--prefix", PREFIX, "--dsn", target, "--keys-dir", str(keys), "--json"))
    server, ready = start_process([sys.executable, "-m", "resolver", "serve", "--json", "--dsn", target, "--data-dir",
                                   str(workdir / "reference"), "--keys-dir", str(keys), "--port", "0", "--tls-port", "0",
                                   "--workers", str(args.workers), "--log-level", "warning"], env)
    try:
        return drive_puts(f"reference PUT ({code.name})", args.workers, ready["https"], "R", admin["user"], admin["password"],
                          args, workdir)
    finally:
        server.stop()
