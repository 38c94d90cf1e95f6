"""``idres import --node URL``: records sent to a running node through its batch API (``POST /api/batch``).

Each batch carries an Idempotency-Key made from its body, so a batch sent again (after a timeout, a
lost connection, a node that died and came back, or an import run again from its checkpoint) is never
applied twice: the node replays what it committed and applies the rest. Two batches are in flight at
once; the checkpoint advances past a batch only when every batch before it has completed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
from collections import deque
from typing import Any, Callable
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

from registry.errors import AuthenticationFailed, ConfigurationError, IdresError, ProtocolError, ServerUnavailable

from ..core.retry import Backoff
from .importer import Checkpoint, Line, Reader, Summary, groups

Progress = Callable[[Summary], None]
Report = Callable[[int, str], None]
IN_FLIGHT = 4
LOOPBACK = ("127.0.0.1", "::1", "localhost")
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)


class BasicAuth:
    def __init__(self, user: str, secret: str) -> None:
        token = base64.b64encode(f"{quote(user, safe='/')}:{secret}".encode()).decode()
        self._header = f"Basic {token}"

    async def header(self, session: aiohttp.ClientSession, base: str) -> str:
        return self._header

    def forget(self) -> None:
        pass


class KeyAuth:
    """Handle's challenge–response with a private key (HS_PUBKEY), then the session it opens."""

    def __init__(self, user: str, private_key: Any) -> None:
        self._user = user
        self._key = private_key
        self._session_id: str | None = None

    def _sign(self, message: bytes) -> tuple[str, bytes]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ed25519, padding

        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return "SHA256", self._key.sign(message)
        return "SHA256", self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    async def header(self, session: aiohttp.ClientSession, base: str) -> str:
        if self._session_id is None:
            async with session.post(base + "/api/sessions") as r:
                if r.status != 201:
                    raise AuthenticationFailed(f"the node refused a session: HTTP {r.status}")
                opened = await r.json()
            cnonce = os.urandom(16)
            alg, signature = self._sign(base64.b64decode(opened["nonce"]) + cnonce)
            fields = {"version": "0", "sessionId": opened["sessionId"], "id": quote(self._user, safe=""), "type": "HS_PUBKEY",
                      "cnonce": base64.b64encode(cnonce).decode(), "alg": alg, "signature": base64.b64encode(signature).decode()}
            answer = "Handle " + ", ".join(f'{k}="{v}"' for k, v in fields.items())
            async with session.put(base + "/api/sessions/this", headers={"Authorization": answer}) as r:
                if r.status != 200:
                    raise AuthenticationFailed(f"the node did not accept the key of {self._user}: HTTP {r.status}")
            self._session_id = opened["sessionId"]
        return f'Handle version="0", sessionId="{self._session_id}"'

    def forget(self) -> None:
        self._session_id = None


class BatchClient:
    def __init__(self, url: str, auth: BasicAuth | KeyAuth, *, verify: bool = True, ca_file: str | None = None) -> None:
        self.base = url.rstrip("/")
        if self.base.startswith("http://") and urlsplit(self.base).hostname not in LOOPBACK:
            raise ConfigurationError(f"credentials go over HTTPS only: use an https:// URL, not {self.base}")
        self._auth = auth
        context: ssl.SSLContext | bool = False
        if self.base.startswith("https"):
            context = ssl.create_default_context(cafile=ca_file)
            if not verify:
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=IN_FLIGHT + 1), timeout=TIMEOUT)

    async def close(self) -> None:
        await self._session.close()

    async def send(self, body: bytes) -> list[dict[str, Any]]:
        """The result lines of one batch; ServerUnavailable if it did not run to its end."""
        key = "idres-import-" + hashlib.sha256(body).hexdigest()[:40]
        try:
            auth = await self._auth.header(self._session, self.base)
            headers = {"Authorization": auth, "Idempotency-Key": key, "Content-Type": "application/x-ndjson"}
            async with self._session.post(self.base + "/api/batch", data=body, headers=headers) as r:
                if r.status != 200:
                    raise _refusal(r.status, await r.read(), self._auth)
                lines = [orjson.loads(line) async for line in r.content if line.strip()]
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, orjson.JSONDecodeError) as exc:
            raise ServerUnavailable(f"the batch did not complete ({type(exc).__name__}: {exc})") from None
        if not lines or lines[-1].get("done") is not True:
            reason = lines[-1].get("message") if lines and "done" in lines[-1] else "the answer stopped short"
            raise ServerUnavailable(f"the batch did not complete: {reason}")
        return lines[:-1]


def _refusal(status: int, raw: bytes, auth: BasicAuth | KeyAuth) -> IdresError:
    try:
        message = orjson.loads(raw).get("message", "")
    except (orjson.JSONDecodeError, AttributeError):
        message = raw[:200].decode("utf-8", "replace")
    if status == 401:
        auth.forget()
        return AuthenticationFailed(f"the node refused the credentials: {message}")
    if status in (429, 502, 503, 504) or status >= 500:
        return ServerUnavailable(f"HTTP {status}: {message}")
    return ProtocolError(f"the node refused the batch: HTTP {status}: {message}")


async def _send_with_retries(client: BatchClient, body: bytes, retries: int, backoff: Backoff) -> list[dict]:
    for attempt in range(retries + 1):
        try:
            return await client.send(body)
        except ServerUnavailable:
            if attempt == retries:
                raise
            await asyncio.sleep(max(0.2, backoff.delay(attempt)))
    raise AssertionError("unreachable")


def _tally(group: list[Line], results: list[dict], summary: Summary, report: Report) -> None:
    sent = [line for line in group if line.item is not None]
    for line in group:
        summary.lines += 1
        if line.error is not None:
            summary.fail(line.number, line.error)
            report(line.number, line.error)
    for line, result in zip(sent, results):
        if result.get("responseCode") == 1:
            if result.get("message") == "unchanged":
                summary.unchanged += 1
            else:
                summary.created += 1
        else:
            message = result.get("message") or f"responseCode {result.get('responseCode')}"
            summary.fail(line.number, message)
            report(line.number, message)


async def import_remote(client: BatchClient, reader: Reader, checkpoint: Checkpoint, *, batch_size: int, retries: int,
                        progress: Progress, report: Report) -> Summary:
    summary = Summary()
    backoff = Backoff(base=0.5, cap=10.0)
    pending: deque[tuple[list[Line], asyncio.Task]] = deque()

    async def complete_oldest() -> None:
        group, task = pending.popleft()
        _tally(group, await task, summary, report)
        checkpoint.advance(group[-1].end, group[-1].number)
        progress(summary)

    try:
        for group in groups(reader.lines(checkpoint.offset, checkpoint.line), batch_size):
            body = b"".join(orjson.dumps(line.item) + b"\n" for line in group if line.item is not None)
            task = asyncio.ensure_future(_send_with_retries(client, body, retries, backoff) if body else _nothing())
            pending.append((group, task))
            if len(pending) >= IN_FLIGHT:
                await complete_oldest()
        while pending:
            await complete_oldest()
    finally:
        for _, task in pending:
            task.cancel()
    checkpoint.advance(checkpoint.offset, checkpoint.line, done=True)
    return summary


async def _nothing() -> list[dict]:
    return []
