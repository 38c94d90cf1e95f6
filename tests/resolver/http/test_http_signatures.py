"""Signed HTTP answers (RFC 9421 over an RFC 9530 Content-Digest), checked with an independent
implementation: the ``http-message-signatures`` package, its aiohttp client middleware and verifier."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from http_message_signatures import HTTPMessageVerifier, InvalidSignature, MappingKeyResolver, algorithms
from http_message_signatures.aiohttp import SignatureMiddleware, SignatureMiddlewareMode

from registry.jws import Jws, key_from_jwk
from resolver.http.signatures import ResponseSigner
from resolver.keys.keyring import Keyring
from tests.nodes import InProcessNode

COVERED = ('"@status"', '"content-type"', '"content-digest"', '"@method";req', '"@path";req', '"@query";req')
SIGNATURE_HEADERS = {"Signature", "Signature-Input", "Content-Digest"}
URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.com/p/1"}
EMAIL_VALUE = {"index": 2, "type": "EMAIL", "data": "service@example.com"}
ASK = {"Accept-Signature": 'sig2=("@status");keyid="x"'}


# --- an independent verifier ---------------------------------------------------------------------


def independent_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638, written out here rather than taken from registry.jws."""
    members = {"OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in members}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def sha256_field(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


async def site_key(node) -> tuple[str, Any]:
    """The node's key as it publishes it in /api/site: (RFC 7638 thumbprint, public key)."""
    r = await node.session.get(node.url("/api/site", secure=False))
    jwk = (await r.json())["site"]["servers"][0]["publicKey"]["value"]
    return independent_thumbprint(jwk), key_from_jwk(jwk)


def verifying_session(origin: str, keyid: str, key, algorithm=algorithms.ED25519) -> tuple[SignatureMiddleware, aiohttp.ClientSession]:
    middleware = SignatureMiddleware(
        SignatureMiddlewareMode.VERIFY_RESPONSE,
        verify_options={
            "origin": origin,
            "signature_algorithm": algorithm,
            "key_resolver": MappingKeyResolver(public_keys={keyid: key}, private_keys={}),
            "require_components": COVERED,
        },
    )
    return middleware, aiohttp.ClientSession(**middleware.session_kwargs)


@dataclass
class Request:
    method: str
    url: str
    headers: dict


@dataclass
class Response:
    status_code: int
    headers: Any
    request: Request


def verifier(keyid: str, key, algorithm=algorithms.ED25519) -> HTTPMessageVerifier:
    return HTTPMessageVerifier(signature_algorithm=algorithm,
                               key_resolver=MappingKeyResolver(public_keys={keyid: key}, private_keys={}))


@pytest.fixture
async def signed(node):
    r = await node.session.put(node.url("/api/handles/88.101/SN-1"), json=[URL_VALUE, EMAIL_VALUE], headers=node.auth())
    assert r.status == 201
    keyid, key = await site_key(node)
    assert isinstance(key, ed25519.Ed25519PublicKey)
    assert keyid == node.keyring.active.kid  # the key the node signs with is the one it publishes
    middleware, session = verifying_session(node.http, keyid, key)
    yield node, middleware, session, keyid, key
    await session.close()


# --- every kind of answer is signed, and verifies --------------------------------------------------

CASES = [
    ("found", "GET", "/api/handles/88.101/SN-1", None, 200, 1),
    ("not found", "GET", "/api/handles/88.101/NO-SUCH", None, 404, 100),
    ("filtered", "GET", "/api/handles/88.101/SN-1?type=URL", None, 200, 1),
    ("values not found", "GET", "/api/handles/88.101/SN-1?type=NOTHING", None, 200, 200),
    ("prefix not homed", "GET", "/api/handles/77.1/X", None, 400, 301),
    ("post with parameters", "POST", "/api/handles/88.101/SN-1", {"type": "EMAIL"}, 200, 1),
]


@pytest.mark.parametrize("how", ["cert", "accept-signature"])
@pytest.mark.parametrize("case, method, path, body, status, code", CASES, ids=[c[0] for c in CASES])
async def test_answers_are_signed_when_asked_and_verify_independently(signed, how, case, method, path, body, status, code):
    node, middleware, session, keyid, _key = signed
    if how == "cert":
        path, headers, label = path + ("&" if "?" in path else "?") + "cert=true", {}, "sig1"
    else:
        headers, label = ASK, "sig2"
    headers = {**headers, "Accept-Encoding": "identity"}  # the body as sent; gzip has its own test
    async with session.request(method, node.http + path, headers=headers, json=body) as r:
        content = await r.read()
        results = middleware.verification_results(r)  # raises unless every covered component verified
        assert (r.status, json.loads(content)["responseCode"]) == (status, code)
        assert r.headers["Content-Digest"] == sha256_field(content)
        assert [result.label for result in results] == [label]
        assert results[0].body == content  # the digest was checked against these bytes
        params = results[0].parameters
        assert params["keyid"] == keyid and params["alg"] == "ed25519"
        assert params["expires"] - params["created"] == node.settings.signing.http_signature_lifetime
        assert abs(params["created"] - time.time()) < 60
        assert r.headers["Signature-Input"].startswith(f"{label}=(")
        assert r.headers["Signature"].startswith(f"{label}=:")


@pytest.mark.parametrize("path", ["/api/handles/88.101/SN-1", "/api/handles/88.101/SN-1?type=URL",
                                  "/api/handles/88.101/NO-SUCH", "/api/handles/88.101/SN-1?cert=false"])
async def test_without_asking_there_are_no_signature_headers(signed, path):
    node = signed[0]
    for _ in range(2):  # the second time from the cache where there is one
        r = await node.session.get(node.url(path, secure=False))
        await r.read()
        assert not SIGNATURE_HEADERS & set(r.headers), path


@pytest.mark.parametrize("path", ["/api/handles/88.101/SN-1?cert=true", "/api/handles/88.101/NO-SUCH?cert=true"])
async def test_a_signed_head_answer_verifies_independently(signed, path):
    """A HEAD answer has no content (RFC 9110 §6.4.1), so its Content-Digest is that of no bytes (RFC 9530 §2)."""
    node, _middleware, _session, keyid, key = signed
    url = node.http + path
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        async with raw.head(url, headers={"Accept-Encoding": "identity"}) as r:
            status, headers, body = r.status, r.headers.copy(), await r.read()
    assert body == b"" and "Signature" in headers
    verifier(keyid, key).verify(Response(status, headers, Request("HEAD", url, {})), body=body)
    assert headers["Content-Digest"] == sha256_field(b"")


async def test_a_signed_gzip_answer_digests_the_encoded_bytes(signed):
    node, middleware, session, _keyid, _key = signed
    big = [URL_VALUE, *({"index": n, "type": "NOTE", "data": f"note {n} " + "x" * 80} for n in range(10, 20))]
    r = await node.session.put(node.url("/api/handles/88.101/BIG"), json=big, headers=node.auth())
    assert r.status == 201
    async with session.get(node.http + "/api/handles/88.101/BIG?cert=true", headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        decoded = await r.read()  # the middleware verified the digest of the encoded bytes, then decoded them
        assert middleware.verification_results(r)[0].body is not None
        assert len(json.loads(decoded)["values"]) == 12


async def test_altering_the_body_the_status_or_the_question_breaks_the_signature(signed):
    node, _middleware, _session, keyid, key = signed
    url = node.http + "/api/handles/88.101/SN-1?cert=true"
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        async with raw.get(url, headers={"Accept-Encoding": "identity"}) as r:
            status, headers, body = r.status, r.headers.copy(), await r.read()
    check = verifier(keyid, key)
    request = Request("GET", url, {})
    assert check.verify(Response(status, headers, request), body=body)[0].body == body

    altered = body.replace(b"https://example.com/p/1", b"https://example.com/p/2")
    assert altered != body
    with pytest.raises(InvalidSignature):
        check.verify(Response(status, headers, request), body=altered)
    with pytest.raises(InvalidSignature):  # a digest made to match the new body is not the one signed
        check.verify(Response(status, {**headers, "Content-Digest": sha256_field(altered)}, request), body=altered)
    with pytest.raises(InvalidSignature):
        check.verify(Response(404, headers, request), body=body)
    with pytest.raises(InvalidSignature):  # the same answer replayed for another question
        check.verify(Response(status, headers, Request("GET", node.http + "/api/handles/88.101/SN-2?cert=true", {})), body=body)
    with pytest.raises(InvalidSignature):
        check.verify(Response(status, headers, Request("GET", url + "&type=URL", {})), body=body)
    with pytest.raises(InvalidSignature):
        check.verify(Response(status, {**headers, "Content-Type": "text/plain"}, request), body=body)


async def test_identical_questions_reuse_the_signature(signed):
    node = signed[0]

    async def signature(path: str, headers=None) -> tuple[str, str]:
        r = await node.session.get(node.url(path, secure=False), headers=headers or {})
        await r.read()
        return r.headers["Signature-Input"], r.headers["Signature"]

    first = await signature("/api/handles/88.101/SN-1?cert=true")
    assert await signature("/api/handles/88.101/SN-1?cert=true") == first
    assert (await signature("/api/handles/88.101/SN-1?cert=true&type=URL"))[1] != first[1]
    sig2 = await signature("/api/handles/88.101/SN-1", ASK)
    assert await signature("/api/handles/88.101/SN-1", ASK) == sig2
    sig3 = await signature("/api/handles/88.101/SN-1", {"Accept-Signature": 'sig3=("@status")'})
    assert sig3[0].startswith("sig3=(") and sig3[1].startswith("sig3=:")  # the label is the client's, even when reused
    assert sig2[0].startswith("sig2=") and sig2[1] != "sig2=" + first[1].partition("=")[2]  # @query differs


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_signature_is_renewed_once_most_of_its_lifetime_has_passed(tmp_path):
    keyring = Keyring(tmp_path / "keys")
    entry = keyring.generate("ed25519", 0)
    lifetime = 100
    start = int(time.time()) - 90  # so that both signatures below are within their validity now
    clock = Clock(start)
    signer = ResponseSigner(keyring, lifetime, clock)
    bodies = iter([b'{"n":1}'] * 3 + [b'{"n":2}'])

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(body=next(bodies), headers={"Content-Type": "application/json"})
        signer.sign(request, response)
        return response

    app = web.Application()
    app.router.add_get("/answer", handler)
    server = TestServer(app)
    await server.start_server()
    try:
        origin = str(server.make_url("/")).rstrip("/")
        keyid = independent_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(
            keyring.public_key(entry.kid).public_bytes_raw()).rstrip(b"=").decode()})
        middleware, session = verifying_session(origin, keyid, keyring.public_key(entry.kid))
        async with session:
            async def ask() -> dict:
                async with session.get(origin + "/answer?q=1") as r:
                    await r.read()
                    result = middleware.verification_results(r)[0]
                    return {"created": result.parameters["created"], "signature": r.headers["Signature"]}

            first = await ask()
            assert first["created"] == start
            clock.now = start + lifetime * 0.8 - 1  # just under 80 % of the lifetime: the same signature
            assert await ask() == first
            clock.now = start + lifetime * 0.8 + 1  # past it: a fresh one
            fresh = await ask()
            assert fresh["created"] == start + 81 and fresh["signature"] != first["signature"]
            changed = await ask()  # different content: never the signature of other bytes
            assert changed["signature"] != fresh["signature"]
    finally:
        await server.close()


async def test_after_a_rotation_answers_are_signed_with_the_new_key(signed):
    node = signed[0]
    elsewhere = Keyring(node.settings.keys_path)
    new = elsewhere.generate("ed25519", int(time.time()))
    elsewhere.rotate(int(time.time()))
    key = elsewhere.public_key(new.kid)
    middleware, session = verifying_session(node.http, new.kid, key)
    async with session, session.get(node.http + "/api/handles/88.101/SN-1?cert=true") as r:
        await r.read()
        assert middleware.verification_results(r)[0].parameters["keyid"] == new.kid
        assert new.kid != signed[3]


async def test_an_rsa_node_signs_with_rsa_v1_5_sha256(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, key_algorithm="rsa") as node:
        await node.provision("88.101")
        keyid, key = await site_key(node)
        assert isinstance(key, rsa.RSAPublicKey)
        middleware, session = verifying_session(node.http, keyid, key, algorithms.RSA_V1_5_SHA256)
        async with session:
            for path in ("/api/handles/0.NA/88.101?cert=true", "/api/handles/88.101/NO-SUCH?cert=true"):
                async with session.get(node.http + path) as r:
                    await r.read()
                    params = middleware.verification_results(r)[0].parameters
                    assert params["alg"] == "rsa-v1_5-sha256" and params["keyid"] == keyid
        # and the records themselves are RS256 JWS
        r = await node.session.get(node.url("/api/handles/0.NA/88.101?type=HS_SIGNATURE", secure=False))
        jws = Jws.parse((await r.json())["values"][0]["data"]["value"])
        assert jws.alg == "RS256" and jws.verify(key)


async def test_a_node_with_signing_off_does_not_sign_answers(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, signing=False) as node:
        await node.provision("88.101")
        for path in ("/api/handles/0.NA/88.101?cert=true", "/api/handles/88.101/NO-SUCH"):
            r = await node.session.get(node.url(path, secure=False), headers=ASK)
            await r.read()
            assert r.status in (200, 404)
            assert not SIGNATURE_HEADERS & set(r.headers)

