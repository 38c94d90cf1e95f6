"""Asking the origin of a mirror for its changes and snapshots, over the process's pooled HTTP client.

Errors become the registry's: the origin unreachable or failing (``UpstreamUnavailable``, retried with
back-off), an answer that is not what was asked (``UpstreamInvalid``), a cursor the origin can no longer
continue (``SnapshotNeeded``, HTTP 410: a fresh snapshot follows).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import zlib
from typing import AsyncIterator
from urllib.parse import quote

import aiohttp
import orjson

from registry.errors import SnapshotNeeded, UpstreamInvalid, UpstreamUnavailable
from registry.pg.mirrors import Mirror

from .wire import Page, parse_page

MAX_LINE = 64 * 1024 * 1024
READ_SIZE = 256 * 1024
MAX_ERROR_BODY = 64 * 1024


def tls_context(mirror: Mirror) -> ssl.SSLContext | bool | None:
    """How to check the origin's HTTPS: its CA certificates, the system's, or not at all."""
    if not mirror.origin.startswith("https://"):
        return None
    if not mirror.tls_verify:
        return False
    return ssl.create_default_context(cadata=mirror.ca_pem.decode("ascii") if mirror.ca_pem else None)


def _authorization(mirror: Mirror) -> dict[str, str]:
    if mirror.username is None:
        return {}
    token = f"{quote(mirror.username, safe='/')}:{mirror.secret or ''}".encode()
    return {"Authorization": "Basic " + base64.b64encode(token).decode("ascii")}


class OriginClient:
    def __init__(self, session: aiohttp.ClientSession, mirror: Mirror, *, timeout: float, gzip: bool, node_name: str) -> None:
        self._session = session
        self.origin = mirror.origin.rstrip("/")
        self._prefix = mirror.spelled
        self._headers = {**_authorization(mirror), "Accept": "application/json", "Via": f"1.1 {node_name}",
                         "Accept-Encoding": "gzip" if gzip else "identity"}
        self._ssl = tls_context(mirror)
        self._timeout = timeout

    def _request(self, path: str, params: dict[str, str], read_timeout: float, decompress: bool = True):
        timeout = aiohttp.ClientTimeout(total=None, connect=self._timeout, sock_read=read_timeout)
        kwargs = {} if self._ssl is None else {"ssl": self._ssl}
        return self._session.get(self.origin + path, params=params, headers=self._headers, timeout=timeout,
                                 allow_redirects=False, auto_decompress=decompress, **kwargs)

    async def changes(self, after: int, limit: int, wait: float) -> Page:
        """A page of the origin's feed for this mirror's prefix, long-polling up to ``wait`` seconds."""
        params = {"after": str(after), "limit": str(limit), "prefix": self._prefix, "wait": f"{wait:g}"}
        try:
            async with self._request("/api/sync/changes", params, wait + self._timeout) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise UpstreamUnavailable(f"the origin {self.origin} did not answer: {_reason(exc)}") from None
        data = _failed_unless_ok(self.origin, status, body)
        return parse_page(data)

    @contextlib.asynccontextmanager
    async def snapshot(self, chunk: int) -> AsyncIterator[AsyncIterator[bytes]]:
        """The lines of a snapshot of this mirror's prefix, as they arrive (each with its newline)."""
        params = {"prefix": self._prefix, "chunk": str(chunk)}
        try:
            async with self._request("/api/sync/snapshot", params, self._timeout, decompress=False) as resp:
                blocks = _blocks(resp)
                if resp.status != 200:
                    _failed_unless_ok(self.origin, resp.status, b"".join([b async for b in blocks])[:MAX_ERROR_BODY])
                yield _lines(blocks, self.origin)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise UpstreamUnavailable(f"the snapshot from {self.origin} broke off: {_reason(exc)}") from None


async def _blocks(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body as it arrives; a gzip body is decompressed off the event loop (zlib lets go of the GIL),
    each block while the one before is being read."""
    chunks = resp.content.iter_chunked(READ_SIZE)
    if resp.headers.get("Content-Encoding", "").lower() != "gzip":
        async for block in chunks:
            yield block
        return
    decompressor = zlib.decompressobj(31)

    def inflate(block: bytes) -> bytes:
        data = decompressor.decompress(block, MAX_LINE)
        if decompressor.unconsumed_tail:
            raise UpstreamInvalid(f"a block of the snapshot expands to more than {MAX_LINE} bytes")
        return data

    pending: asyncio.Future | None = None
    async for block in chunks:
        if pending is not None:
            ready = await pending
            pending = asyncio.ensure_future(asyncio.to_thread(inflate, block))
            yield ready
        else:
            pending = asyncio.ensure_future(asyncio.to_thread(inflate, block))
    if pending is not None:
        yield await pending
    yield decompressor.flush()


async def _lines(blocks: AsyncIterator[bytes], origin: str) -> AsyncIterator[bytes]:
    """Lines of a streamed body, with bounded memory: no line may be longer than MAX_LINE."""
    pending = bytearray()
    async for block in blocks:
        pending += block
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            yield bytes(pending[start:end + 1])
            start = end + 1
        del pending[:start]
        if len(pending) > MAX_LINE:
            raise UpstreamInvalid(f"the snapshot from {origin} has a line longer than {MAX_LINE} bytes")
    if pending:
        yield bytes(pending)


def _failed_unless_ok(origin: str, status: int, body: bytes) -> dict:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    message = data.get("message") if isinstance(data, dict) else None
    said = f"HTTP {status}" + (f", responseCode {data.get('responseCode')}: {message}" if isinstance(data, dict) else "")
    if status == 410:
        raise SnapshotNeeded(f"the origin {origin} can no longer continue this mirror's cursor ({message or 'HTTP 410'})")
    if status >= 500 or status == 429:
        raise UpstreamUnavailable(f"the origin {origin} failed: {said}")
    if status != 200 or not isinstance(data, dict) or data.get("responseCode") != 1:
        raise UpstreamInvalid(f"the origin {origin} refused: {said}")
    return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    return str(exc) or type(exc).__name__
