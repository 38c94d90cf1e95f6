"""Asking other nodes: the pooled HTTP client of recursive resolution.

``Upstream.ask`` asks the REST interfaces of the nodes that serve a delegated prefix, in order, with a
timeout per call and one deadline for all of them, and returns the record (or the authoritative "no
such handle") once it has checked it: valid JSON, the record of the handle asked for, and — with a
trust root — signatures that verify up to the root (``registry.trust``). Every request carries a
``Via`` header naming the nodes it passed, so that a loop (A → B → A) or a path longer than the hop
limit is refused at once instead of going round.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Sequence
from urllib.parse import quote

import aiohttp
import orjson

from registry.errors import ConfigurationError, IdresError, ResolutionLoop, UpstreamInvalid, UpstreamUnavailable
from registry.jws import JwsError, load_public_key
from registry.model import Handle, HandleValue, Record, fold
from registry.trust import SignatureMemo, TrustAnchor, averify
from registry.value_json import parse_answer_values

VIA = "Via"
CACHE_STATUS = "Cache-Status"
MAX_ANSWER_BYTES = 4 * 1024 * 1024
_VIA_ENTRY = re.compile(r"^\s*(?:[A-Za-z0-9_.-]+/)?[0-9.]+\s+(\S+)")
_DETAIL = re.compile(r'detail="([^"]*)"')

Certificates = Callable[[str], Awaitable["Sequence[HandleValue] | None"]]


@dataclass(frozen=True)
class Answered:
    """What a node answered: the record (None: the handle does not exist), which node is authoritative
    for it (the deepest one the answer names), and whether it was verified up to the trust root."""

    record: Record | None
    node: str
    verified: bool


class _Failed(Exception):
    """One server did not give a usable answer; ``unreachable`` when it gave none at all."""

    def __init__(self, url: str, reason: str, *, unreachable: bool) -> None:
        super().__init__(reason)
        self.url, self.reason, self.unreachable = url, reason, unreachable

    def __str__(self) -> str:
        return f"{self.url.split('://', 1)[-1]}: {self.reason}"


def parse_via(header: str | None) -> tuple[str, ...]:
    """The nodes a request passed (``Via: 1.1 a, 1.1 b`` → ``("a", "b")``), comments dropped."""
    if not header:
        return ()
    names = []
    for part in header.split(","):
        match = _VIA_ENTRY.match(part)
        if match:
            names.append(match.group(1))
    return tuple(names)


def load_trust_anchor(path: Path, root_handle: str) -> TrustAnchor:
    """The trust root a node verifies other nodes' answers against: a PEM or JWK public key file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the trust root {path}: {exc.strerror or exc}") from None
    return trust_anchor(data, root_handle, str(path))


def trust_anchor(data: bytes, root_handle: str, source: str) -> TrustAnchor:
    """The trust root from the contents of such a file (``source`` names it in errors)."""
    try:
        key, _index = load_public_key(data)
    except JwsError as exc:
        raise ConfigurationError(f"the trust root {source} is not a public key: {exc.message}") from None
    return TrustAnchor((key,), root_handle)


def open_session(connections: int) -> aiohttp.ClientSession:
    """The pooled keep-alive client every upstream call of a process shares."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections, ssl=False, keepalive_timeout=60))


class Upstream:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        node_name: str,
        timeout: float,
        deadline: float,
        max_hops: int,
        anchor: TrustAnchor | None,
        certificates: Certificates,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self.node_name = node_name
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._deadline = deadline
        self.max_hops = max_hops
        self.anchor = anchor
        self._certificates = certificates
        self._wall = wall_clock
        self._memo = SignatureMemo()
        self.calls = 0
        self.verified = 0  # records checked up to the trust root
        self.refused = 0  # records whose signatures did not verify

    async def close(self) -> None:
        await self._session.close()

    def check_path(self, via: tuple[str, ...]) -> None:
        """Refuse a request that already passed this node, or too many nodes."""
        if fold(self.node_name) in {fold(n) for n in via}:
            path = " → ".join((*via, self.node_name))
            raise ResolutionLoop(f"resolution loop: {path}: the delegations of these nodes point back at each other")
        if len(via) >= self.max_hops:
            raise ResolutionLoop(f"resolution passed {len(via)} nodes ({' → '.join(via)}), more than the limit of {self.max_hops}")

    async def ask(self, handle: Handle, urls: Sequence[str], via: tuple[str, ...], *, serving: str,
                  verify: bool = True) -> Answered:
        """The answer of the first server of ``urls`` that gives a usable one; ``serving`` names what
        they serve, for errors."""
        self.check_path(via)
        if not urls:
            raise UpstreamUnavailable(f"{serving} is delegated, but no HTTP interface of it is known")
        failures: list[_Failed] = []
        try:
            async with asyncio.timeout(self._deadline):
                for url in urls:
                    try:
                        return await self._ask_one(url, handle, via, verify)
                    except _Failed as failure:
                        failures.append(failure)
        except TimeoutError:
            failures.append(_Failed(urls[len(failures)], f"no answer within the deadline of {self._deadline:g} s", unreachable=True))
        raise _summary(serving, failures)

    async def _ask_one(self, url: str, handle: Handle, via: tuple[str, ...], verify: bool) -> Answered:
        self.calls += 1
        headers = {VIA: ", ".join(f"1.1 {name}" for name in (*via, self.node_name)), "Accept": "application/json"}
        target = f"{url}/api/handles/{quote(handle.text, safe='/:.-_~')}"
        try:
            async with self._session.get(target, params={"doNotRefer": "true"}, headers=headers,
                                         timeout=self._timeout, allow_redirects=False) as resp:
                body = await resp.content.read(MAX_ANSWER_BYTES + 1)
                status, detail = resp.status, _detail(resp.headers.get(CACHE_STATUS))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _Failed(url, _reason(exc), unreachable=True) from None
        answer = _parsed(url, status, body, handle)
        node = detail or url.split("://", 1)[-1]
        if answer is None:
            return Answered(None, node, verified=False)
        verified = False
        if verify and self.anchor is not None:
            await self._verify(url, handle, answer)
            verified = True
        return Answered(Record(handle, tuple(answer)), node, verified)

    async def _verify(self, url: str, handle: Handle, values: list[HandleValue]) -> None:
        report = await averify(handle.text, values, self.anchor, int(self._wall()), self._certificates, self._memo)  # type: ignore[arg-type]
        if not report.ok:
            self.refused += 1
            raise _Failed(url, f"the record of {handle.text} does not verify: {report.problem()}", unreachable=False)
        self.verified += 1


def _parsed(url: str, status: int, body: bytes, handle: Handle) -> list[HandleValue] | None:
    """The values of an answer, or None for an authoritative not-found; _Failed or a relayed loop otherwise."""
    if len(body) > MAX_ANSWER_BYTES:
        raise _Failed(url, f"the answer is larger than {MAX_ANSWER_BYTES} bytes", unreachable=False)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Failed(url, f"HTTP {status} with a body that is not JSON", unreachable=status >= 500) from None
    if not isinstance(data, dict):
        raise _Failed(url, f"HTTP {status} with JSON that is not an object", unreachable=False)
    code, message = data.get("responseCode"), data.get("message")
    if status == 508 and code == ResolutionLoop.response_code:
        raise ResolutionLoop(str(message or "resolution loop"))
    if status == 404 and code == 100:
        return None
    if status != 200 or code not in (1, 200):
        reason = f"HTTP {status}, responseCode {code}" + (f": {message}" if message else "")
        raise _Failed(url, reason, unreachable=status in (503, 504))
    if not isinstance(data.get("handle"), str) or fold(data["handle"]) != handle.key:
        raise _Failed(url, f"answered with the record of {data.get('handle')!r} instead of {handle.text}", unreachable=False)
    try:
        return parse_answer_values(data.get("values", []))
    except IdresError as exc:
        raise _Failed(url, f"answered values idres cannot read: {exc.message}", unreachable=False) from None


def _summary(serving: str, failures: list[_Failed]) -> IdresError:
    said = "; ".join(str(f) for f in failures)
    if all(f.unreachable for f in failures):
        return UpstreamUnavailable(f"no node serving {serving} answered: {said}")
    return UpstreamInvalid(f"no node serving {serving} gave a usable answer: {said}")


def _detail(header: str | None) -> str | None:
    match = _DETAIL.search(header or "")
    return match.group(1) if match else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
