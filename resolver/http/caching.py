"""HTTP caching of handle answers, for clients and the proxies between them and the node.

Every handle answer says how long it may be kept: ``Cache-Control: max-age`` is the TTL the entry
was cached with here, and ``Age`` how long it has been kept, so a cache downstream keeps it for the
remaining TTL (``max-age`` − ``Age``), as this node does. ``Cache-Status`` (RFC 9211) says how the
answer was obtained (``hit``, or ``fwd=uri-miss|stale|bypass``), the remaining ``ttl`` — negative
when served stale — and, in ``detail``, the node authoritative for the record. Records relayed from
another node say whether they were verified up to the trust root (``Idres-Verification``). A found
record carries a strong ``ETag``; ``If-None-Match`` with it gets ``304 Not Modified``.

A cache hit pays for one small dict, two lookups in tables and one string join: everything else is
rendered once per cached entry and spelling, in its ``View``.
"""

from __future__ import annotations

import hashlib
import math
import sys

from aiohttp import hdrs, web

from ..resolution.engine import BYPASS, HIT, STALE, STALE_SERVED, URI_MISS, CachedRecord, Found, NegativeEntry
from .respond import JSON_TYPE, compress

CACHE_STATUS = "Cache-Status"
VERIFICATION = "Idres-Verification"
NAME = "idres"
_NUMBERS = tuple(str(n) for n in range(86401))
_FORWARD = {URI_MISS: "fwd=uri-miss; stored", STALE: "fwd=stale; stored", BYPASS: "fwd=bypass"}
_GZIP = {hdrs.CONTENT_ENCODING: "gzip", hdrs.VARY: "Accept-Encoding"}


def etag_of(body: bytes, coding: str = "") -> str:
    """A strong entity tag of exactly these bytes (and this content coding)."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + (f"-{coding}" if coding else "") + '"'


def _number(n: int) -> str:
    return _NUMBERS[n] if 0 <= n < len(_NUMBERS) else str(n)


def lifetime(entry: CachedRecord | NegativeEntry) -> int:
    """The TTL the entry was cached with, in whole seconds."""
    return max(0, int(entry.expires - entry.stored_at))


def verification(entry: CachedRecord | NegativeEntry) -> str | None:
    """What a relayed record's header says; None for this node's own records."""
    if isinstance(entry, NegativeEntry) or not entry.relayed:
        return None
    return "verified" if entry.verified else "unverified"


class View:
    """A record's public answer as one spelling of its handle asked for it, with the headers its
    responses always carry; the gzip form (with its own entity tag) is made once it is needed.

    A hit touches as few objects of its own view as it can (the cache holds many thousands, mostly cold
    in the CPU's caches): the header values that views share (``max-age``, ``Cache-Status`` up to its
    ttl) are interned strings, and only the entity tag is the view's own."""

    __slots__ = ("text", "body", "gzipped", "etag", "cache_control", "verification", "headers", "gzip_headers",
                 "hit_status", "lifetime")

    def __init__(self, text: str, body: bytes, entry: CachedRecord) -> None:
        self.text, self.body = text, body
        self.gzipped: bytes | None = None
        self.lifetime = lifetime(entry)
        self.etag = etag_of(body)
        self.cache_control = sys.intern(f"max-age={self.lifetime}")
        self.verification = verification(entry)
        self.headers = {hdrs.CONTENT_TYPE: JSON_TYPE, hdrs.CACHE_CONTROL: self.cache_control, hdrs.ETAG: self.etag}
        if self.verification is not None:
            self.headers[VERIFICATION] = self.verification
        self.gzip_headers: dict[str, str] = {}
        self.hit_status = sys.intern(f'{NAME}; hit; detail="{entry.source}"; ttl=')

    def gzip(self) -> bytes:
        if self.gzipped is None:
            self.gzipped = compress(self.body)
            self.gzip_headers = {**self.headers, hdrs.ETAG: etag_of(self.body, "gzip"), **_GZIP}
        return self.gzipped


def hit_headers(view: View, entry: CachedRecord, now: float, gzipped: bool) -> dict[str, str]:
    """The headers of a cache hit answered with a view: the hot path."""
    age = int(now - entry.stored_at)
    if gzipped:
        headers = view.gzip_headers.copy()
    else:
        headers = {hdrs.CONTENT_TYPE: JSON_TYPE, hdrs.CACHE_CONTROL: view.cache_control, hdrs.ETAG: view.etag}
        if view.verification is not None:
            headers[VERIFICATION] = view.verification
    headers[hdrs.AGE] = _number(age)
    headers[CACHE_STATUS] = view.hit_status + _number(view.lifetime - age)
    return headers


def view_headers(view: View, entry: CachedRecord, now: float, gzipped: bool, found: Found | None) -> dict[str, str]:
    """The headers of an answer with a view: a hit's, or those of ``found``, obtained another way."""
    if found is None or found.how == HIT:
        return hit_headers(view, entry, now, gzipped)
    return {**(view.gzip_headers if gzipped else view.headers), **answer_headers(found, now)}


def cache_status(found: Found, now: float) -> str:
    """The Cache-Status of an answer that did not come from the hot path."""
    entry = found.entry
    about = f'detail="{entry.source}"'
    ttl = math.floor(entry.expires - now)  # negative once stale
    if found.how == HIT:
        return f"{NAME}; hit; {about}; ttl={ttl}"
    if found.how == STALE_SERVED:
        status = getattr(found.failure, "http_status", None) or 504
        return f"{NAME}; fwd=stale; fwd-status={status}; ttl={min(ttl, -1)}; {about}"
    forward = _FORWARD[found.how]
    return f"{NAME}; {forward}; {about}" + ("" if found.how == BYPASS else f"; ttl={ttl}")


def answer_headers(found: Found, now: float) -> dict[str, str]:
    """Cache-Control, Age, Cache-Status and Idres-Verification of an answer off the hot path."""
    entry = found.entry
    headers = {CACHE_STATUS: cache_status(found, now)}
    if found.how == BYPASS or found.how == STALE_SERVED:
        headers[hdrs.CACHE_CONTROL] = "max-age=0"
    else:
        headers[hdrs.CACHE_CONTROL] = f"max-age={lifetime(entry)}"
        headers[hdrs.AGE] = _number(int(now - entry.stored_at))
    said = verification(entry)
    if said is not None:
        headers[VERIFICATION] = said
    return headers


def not_modified(request: web.Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names this entity tag (or ``*``)."""
    wanted = request.headers.get(hdrs.IF_NONE_MATCH)
    if wanted is None:
        return False
    return wanted.strip() == "*" or etag in (tag.strip().removeprefix("W/") for tag in wanted.split(","))


def not_modified_response(headers: dict[str, str]) -> web.Response:
    kept = {k: v for k, v in headers.items() if k not in (hdrs.CONTENT_TYPE, hdrs.CONTENT_ENCODING)}
    return web.Response(status=304, headers=kept)
