"""Real idres nodes for tests: in this process (one worker) or as an ``idres serve`` subprocess."""

from __future__ import annotations

import base64
import collections
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from aiohttp import web

from registry.pg import db
from resolver.config import Settings
from resolver.http.app import create_app
from resolver.http.tls import server_context
from resolver.keys.site import site_of
from resolver.ops.provisioning import AdminIdentity, create_prefix_admin, home_prefix, node_keyring, open_store
from resolver.serving.node import Node
from resolver.serving.sockets import listening

READY_DEADLINE = 60.0


def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an ``idres`` subprocess: this one's without IDRES_* settings, plus ``extra``,
    so that nothing but what a test passes configures the command."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("IDRES_")}
    return {**base, **(extra or {})}


def basic(user: str, secret: str) -> dict[str, str]:
    """An Authorization header as pyhandle sends it: HTTP Basic with the user percent-encoded."""
    token = base64.b64encode(f"{quote(user, safe='/')}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def idres(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``idres ARGS`` in an empty working directory, configured by nothing but its arguments."""
    with tempfile.TemporaryDirectory(prefix="idres-cwd-") as cwd:
        return subprocess.run([sys.executable, "-m", "resolver", *args], capture_output=True, text=True, input=stdin,
                              timeout=120, cwd=cwd, env=command_env())


class InProcessNode:
    """One serving process's application on ephemeral HTTP and HTTPS ports of 127.0.0.1."""

    def __init__(self, dsn: str, data_dir: Path, **settings) -> None:
        base = dict(host="127.0.0.1", port=0, tls_port=0, data_dir=data_dir, dsn=dsn, workers=1, cache_poll_interval=0.2)
        self.settings = Settings.load(env={}, **{**base, **settings})
        self.dsn = dsn
        self.admins: dict[str, AdminIdentity] = {}

    async def __aenter__(self) -> "InProcessNode":
        http_sock = listening("127.0.0.1", 0)
        tls_sock = listening("127.0.0.1", 0)
        self.settings = self.settings.with_changes(port=http_sock.getsockname()[1], tls_port=tls_sock.getsockname()[1])
        self.keyring = node_keyring(self.settings, int(time.time()))  # as `idres serve` does on first start
        self.node = await Node.open(self.settings, self.dsn)
        self.app = create_app(self.node)
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=5)
        await self.runner.setup()
        self.node.start()
        await web.SockSite(self.runner, http_sock).start()
        await web.SockSite(self.runner, tls_sock, ssl_context=server_context(self.settings)).start()
        self.http = f"http://127.0.0.1:{self.settings.listen.port}"
        self.https = f"https://127.0.0.1:{self.settings.listen.tls_port}"
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False))
        await self.wait_until_coherent()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()
        await self.runner.cleanup()
        await self.node.close()

    async def wait_until_coherent(self) -> None:
        """Poll until the change follower is connected (the cache is in use from then on)."""
        import asyncio

        deadline = time.monotonic() + READY_DEADLINE
        while self.node.follower is not None and not self.node.follower.connected:
            if time.monotonic() > deadline:
                raise TimeoutError("the change follower did not connect")
            await asyncio.sleep(0.02)

    async def settled(self) -> None:
        """Poll until the change follower has applied every committed change."""
        import asyncio

        from registry.pg import feed

        async with db.connection(self.dsn) as conn:
            head = await feed.head(conn)
        deadline = time.monotonic() + READY_DEADLINE
        while self.node.follower.cursor < head:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the change follower is stuck at {self.node.follower.cursor} < {head}")
            await asyncio.sleep(0.01)

    async def provision(self, prefix: str) -> AdminIdentity:
        """Home a prefix and create its admin, as an operator would from the command line."""
        pool = await db.create_pool(self.dsn, max_size=1)
        try:
            store = await open_store(self.settings, pool, self.keyring)
            now = int(time.time())
            await home_prefix(store, site_of(self.settings, self.keyring), prefix, now, self.keyring)
            admin = await create_prefix_admin(store, prefix, now)
        finally:
            await pool.close()
        await self.node.keeper.reload()
        self.admins[prefix] = admin
        return admin

    def auth(self, prefix: str = "88.101") -> dict[str, str]:
        admin = self.admins[prefix]
        return basic(str(admin.identity), admin.secret)

    def url(self, path: str, secure: bool = True) -> str:
        return (self.https if secure else self.http) + path


class ServeProcess:
    """``idres serve --json`` in a subprocess; ``start()`` returns once it printed its ready line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, descriptors: int | None = None) -> None:
        self.args = [sys.executable, "-m", "resolver", "serve", "--json", *args]
        self.env = command_env(env)
        self.descriptors = descriptors  # as `ulimit -n` would set it for the node
        self.cwd = tempfile.mkdtemp(prefix="idres-cwd-")  # nothing is read from or left in the caller's directory
        self.proc: subprocess.Popen | None = None
        self.ready: dict = {}
        self.lines: list[str] = []

    def start(self) -> "ServeProcess":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, text=True, cwd=self.cwd,
                                     preexec_fn=self._limit if self.descriptors else None)
        self.ready = self._read_ready()
        return self

    def _limit(self) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.descriptors, self.descriptors))

    def _read_ready(self) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + READY_DEADLINE
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                if self.proc.poll() is not None:
                    break
                continue
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            event = json.loads(line)
            if event.get("event") == "ready":
                return event
        err = self.stop()
        raise RuntimeError(f"idres serve did not become ready: {''.join(self.lines)}\n{err}")

    @property
    def http(self) -> str:
        return self.ready["http"]

    @property
    def https(self) -> str:
        return self.ready["https"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> str:
        """Signal the node and wait for it; returns what it wrote to stderr."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        shutil.rmtree(self.cwd, ignore_errors=True)
        return err or ""

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


async def pinned(url: str, workers: int, per_worker: int = 1) -> list[aiohttp.ClientSession]:
    """Keep-alive sessions of one connection each, ``per_worker`` on every worker of a node (told apart
    by the pid /readyz reports)."""
    groups: dict[int, list[aiohttp.ClientSession]] = collections.defaultdict(list)
    for _ in range(200):
        if len(groups) == workers and all(len(g) >= per_worker for g in groups.values()):
            break
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        async with session.get(url + "/healthz") as r:
            await r.read()
        async with session.get(url + "/readyz") as r:
            pid = (await r.json())["pid"]
        if len(groups[pid]) >= per_worker:
            await session.close()
        else:
            groups[pid].append(session)
    assert len(groups) == workers, "could not reach every worker"
    return [s for g in groups.values() for s in g]
