"""Signed HTTP answers: RFC 9421 HTTP Message Signatures over an RFC 9530 ``Content-Digest``.

Records carry HS_SIGNATURE values, but a not-found answer or a filtered response has nothing a record
signature covers. When a client asks (``?cert=true`` or an ``Accept-Signature`` header) the response
itself is signed with the node's active key. The signature covers the status, the content type and
digest, and the request's method, path and query, so a signed answer to a GET cannot be replayed for
another question. (A POST's body parameters are not covered: ask with GET for signed answers.) A
signature is reused for identical covered components until shortly before it expires.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Callable

from aiohttp import hdrs, web
from cryptography.hazmat.primitives.asymmetric import ed25519

from registry.jws import sign_bytes, thumbprint

from ..keys.keyring import Keyring
from ..resolution.cache import TtlLru
from .params import flag

COMPONENTS = ('"@status"', '"content-type"', '"content-digest"', '"@method";req', '"@path";req', '"@query";req')
_LABEL = re.compile(r"\s*([a-z*][a-z0-9_.*-]*)\s*=")
ACCEPT_SIGNATURE = "Accept-Signature"
REUSE_MARGIN = 0.2  # re-sign when less than this share of the lifetime is left
MAX_REUSE = 10_000


def wants_signature(request: web.Request, query=None) -> bool:
    """Asked for with an Accept-Signature header or ``cert=true`` (in the query, or a POST body's parameters)."""
    if ACCEPT_SIGNATURE in request.headers:
        return True
    query = query if query is not None else (request.query if request.query_string else {})
    return flag(query, "cert", False)


def content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def label_of(request: web.Request) -> str:
    match = _LABEL.match(request.headers.get(ACCEPT_SIGNATURE, ""))
    return match.group(1) if match else "sig1"


class ResponseSigner:
    def __init__(self, keyring: Keyring, lifetime: int, clock: Callable[[], float] = time.time) -> None:
        self._keyring = keyring
        self._lifetime = lifetime
        self._clock = clock
        self._reuse: TtlLru[tuple, tuple[str, str]] = TtlLru(MAX_REUSE, None, clock)

    def sign(self, request: web.Request, response: web.Response) -> None:
        """Add Content-Digest, Signature-Input and Signature to a response; nothing without an active key."""
        self._keyring.reload_if_changed()
        active = self._keyring.active
        body = response.body if isinstance(response.body, bytes) and request.method != "HEAD" else b""  # HEAD sends no content
        if active is None:
            return
        path, _, query = request.raw_path.partition("?")
        digest = content_digest(body)
        covered = (
            str(response.status),
            response.headers.get(hdrs.CONTENT_TYPE, ""),
            digest,
            request.method,
            path,
            "?" + query,
        )
        label = label_of(request)
        key = (active.kid, label, covered)
        signed = self._reuse.get(key)
        if signed is None:
            signed = self._signature(active.kid, label, covered)
            self._reuse.put(key, signed, self._lifetime * (1 - REUSE_MARGIN))
        response.headers["Content-Digest"] = digest
        response.headers["Signature-Input"], response.headers["Signature"] = signed

    def _signature(self, kid: str, label: str, covered: tuple[str, ...]) -> tuple[str, str]:
        key = self._keyring.private_key(kid)
        created = int(self._clock())
        alg = "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa-v1_5-sha256"
        params = f"({' '.join(COMPONENTS)});created={created};expires={created + self._lifetime};keyid=\"{thumbprint(key)}\";alg=\"{alg}\""
        base = "".join(f"{name}: {value}\n" for name, value in zip(COMPONENTS, covered)) + f'"@signature-params": {params}'
        signature = base64.b64encode(sign_bytes(key, base.encode("utf-8"))).decode("ascii")
        return f"{label}={params}", f"{label}=:{signature}:"
