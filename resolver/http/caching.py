"""HTTP caching of handle answers, for clients and the proxies between them and the node.

Every handle answer says how long it may be kept (``Cache-Control: max-age`` from the cache entry's
remaining TTL), how long it has been kept here (``Age``), how it was obtained (``Cache-Status``, RFC
9211: ``hit``, or ``fwd=uri-miss|stale|bypass``, the remaining ``ttl`` — negative when served stale —
and ``detail``, the node authoritative for the record), and, for records relayed from another node,
whether they were verified up to the trust root (``Idres-Verification``). A found record carries a
strong ``ETag``; ``If-None-Match`` with it gets ``304 Not Modified``.
"""

from __future__ import annotations

import hashlib
import math

from aiohttp import hdrs, web

from ..resolution.engine import BYPASS, HIT, STALE, STALE_SERVED, URI_MISS, CachedRecord, Found, NegativeEntry
from .respond import JSON_TYPE, compress

CACHE_STATUS = "Cache-Status"
VERIFICATION = "Idres-Verification"
NAME = "idres"
_MAX_AGES = tuple(f"max-age={n}" for n in range(3601))
_AGES = tuple(str(n) for n in range(3601))
_FORWARD = {URI_MISS: "fwd=uri-miss; stored", STALE: "fwd=stale; stored", BYPASS: "fwd=bypass"}


def etag_of(body: bytes, coding: str = "") -> str:
    """A strong entity tag of exactly these bytes (and this content coding)."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + (f"-{coding}" if coding else "") + '"'


def verification(entry: CachedRecord | NegativeEntry) -> str | None:
    """What a relayed record's header says; None for this node's own records."""
    if isinstance(entry, NegativeEntry) or not entry.relayed:
        return None
    return "verified" if entry.verified else "unverified"


class View:
    """A record's public answer as one spelling of its handle asked for it, with what its responses
    always carry; its gzip form (and that form's entity tag) is made once it is needed."""

    __slots__ = ("text", "body", "gzipped", "etag", "gzip_etag", "headers", "hit_status")

    def __init__(self, text: str, body: bytes, entry: CachedRecord) -> None:
        self.text, self.body = text, body
        self.gzipped: bytes | None = None
        self.gzip_etag = ""
        self.etag = etag_of(body)
        self.headers = {hdrs.CONTENT_TYPE: JSON_TYPE}
        said = verification(entry)
        if said is not None:
            self.headers[VERIFICATION] = said
        self.hit_status = f'{NAME}; hit; detail="{entry.source}"; ttl='

    def gzip(self) -> bytes:
        if self.gzipped is None:
            self.gzipped = compress(self.body)
            self.gzip_etag = etag_of(self.body, "gzip")
        return self.gzipped


def freshness(entry: CachedRecord | NegativeEntry, now: float) -> tuple[str, str, int]:
    """(Cache-Control, Age, remaining TTL in seconds) of an entry at ``now`` on the engine's clock."""
    remaining = int(entry.expires - now)
    age = int(now - entry.stored_at)
    max_age = _MAX_AGES[remaining] if 0 <= remaining < len(_MAX_AGES) else f"max-age={max(remaining, 0)}"
    return max_age, _AGES[age] if 0 <= age < len(_AGES) else str(age), remaining


def view_headers(view: View, entry: CachedRecord, now: float, gzipped: bool, found: Found | None = None) -> dict[str, str]:
    """The headers of an answer with a view: for a cache hit (the hot path, so nothing but lookups and
    one join), or for ``found`` another way."""
    if found is not None and found.how != HIT:
        headers = {**view.headers, **answer_headers(found, now)}
    else:
        max_age, age, remaining = freshness(entry, now)
        headers = {**view.headers, hdrs.CACHE_CONTROL: max_age, hdrs.AGE: age, CACHE_STATUS: view.hit_status + str(remaining)}
    headers[hdrs.ETAG] = view.gzip_etag if gzipped else view.etag
    return headers


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
        headers[hdrs.CACHE_CONTROL], headers[hdrs.AGE], _ = freshness(entry, now)
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
    kept = {k: v for k, v in headers.items() if k != hdrs.CONTENT_TYPE}
    return web.Response(status=304, headers=kept)
