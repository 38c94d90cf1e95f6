"""Key-based authentication: Handle's challenge–response from a client written from the spec (§6.3–§6.4)
with ``cryptography``, TLS client certificates (§6.2), hashed secret keys, and limits on failed logins."""

from __future__ import annotations

import base64
import datetime
import os
import ssl
from urllib.parse import quote

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from registry.jws import b64url
from registry.pg import db
from tests.nodes import InProcessNode, basic

DEVICE = "88.101/DEVICE-7"
TARGET = "88.101/OWNED-BY-DEVICE"


def jwk_of(private) -> dict:
    public = private.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    numbers = public.public_numbers()
    return {"kty": "RSA", "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes(3, "big"))}


def sign(private, message: bytes) -> bytes:
    """What the spec asks of the client: RSASSA-PKCS1-v1_5 with SHA-256, or Ed25519 over the bytes."""
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(message)
    return private.sign(message, padding.PKCS1v15(), hashes.SHA256())


async def device_with_key(node, private) -> None:
    """An identity with an HS_PUBKEY at 300, and a handle it administers."""
    pubkey = {"index": 300, "type": "HS_PUBKEY", "data": {"format": "key", "value": jwk_of(private)}}
    r = await node.session.put(node.url(f"/api/handles/{DEVICE}"), json=[pubkey], headers=node.auth())
    assert r.status == 201, await r.text()
    grant = {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": DEVICE, "index": 300, "permissions": "011111110011"}}}
    r = await node.session.put(node.url(f"/api/handles/{TARGET}"), json=[grant, {"index": 1, "type": "URL", "data": "v1"}],
                               headers=node.auth())
    assert r.status == 201, await r.text()


def handle_header(**fields: str) -> dict[str, str]:
    return {"Authorization": "Handle " + ", ".join(f'{k}="{v}"' for k, v in fields.items())}


async def open_session(session: aiohttp.ClientSession, base: str) -> tuple[str, bytes]:
    r = await session.post(base + "/api/sessions")
    assert r.status == 201 and r.headers["Location"] == "/api/sessions/this"
    body = await r.json()
    assert body["authenticated"] is False
    return body["sessionId"], base64.b64decode(body["nonce"])


async def answer(session: aiohttp.ClientSession, base: str, session_id: str, nonce: bytes, private, identity: str) -> aiohttp.ClientResponse:
    cnonce = os.urandom(16)
    fields = dict(version="0", sessionId=session_id, id=quote(identity, safe=""), type="HS_PUBKEY",
                  cnonce=base64.b64encode(cnonce).decode(), alg="SHA256",
                  signature=base64.b64encode(sign(private, nonce + cnonce)).decode())
    return await session.put(base + "/api/sessions/this", headers=handle_header(**fields))


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
async def test_challenge_response_opens_a_session_that_authorises_writes(node, algorithm):
    private = ed25519.Ed25519PrivateKey.generate() if algorithm == "ed25519" else rsa.generate_private_key(65537, 2048)
    await device_with_key(node, private)
    session_id, nonce = await open_session(node.session, node.https)
    r = await answer(node.session, node.https, session_id, nonce, private, f"300:{DEVICE}")
    assert r.status == 200, await r.text()
    assert await r.json() == {"sessionId": session_id, "nonce": base64.b64encode(nonce).decode(),
                              "authenticated": True, "id": f"300:{DEVICE}"}
    minimal = handle_header(version="0", sessionId=session_id)
    r = await node.session.put(node.url(f"/api/handles/{TARGET}?index=1"), json=[{"index": 1, "type": "URL", "data": "v2"}],
                               headers=minimal)
    assert r.status == 200, await r.text()
    r = await node.session.put(node.url("/api/handles/88.101/NOT-ITS-OWN"), json=[{"index": 1, "type": "URL", "data": "x"}],
                               headers=minimal)
    assert r.status == 403  # authenticated, but the device is no admin of the prefix
    assert (await node.session.delete(node.https + "/api/sessions/this", headers=minimal)).status == 204
    r = await node.session.put(node.url(f"/api/handles/{TARGET}?index=1"), json=[{"index": 1, "type": "URL", "data": "v3"}],
                               headers=minimal)
    assert r.status == 401


async def test_a_wrong_key_is_refused_with_401(node):
    await device_with_key(node, ed25519.Ed25519PrivateKey.generate())
    session_id, nonce = await open_session(node.session, node.https)
    r = await answer(node.session, node.https, session_id, nonce, ed25519.Ed25519PrivateKey.generate(), f"300:{DEVICE}")
    assert r.status == 401
    body = await r.json()
    assert body["authenticated"] is False and "not verified" in body["error"]
    r = await node.session.put(node.url(f"/api/handles/{TARGET}?index=1"), json=[{"index": 1, "type": "URL", "data": "x"}],
                               headers=handle_header(version="0", sessionId=session_id))
    assert r.status == 401 and (await r.json())["responseCode"] == 402
    r = await node.session.get(node.https + "/api/sessions/this", headers=handle_header(sessionId="no-such-session"))
    assert r.status == 403


async def test_sessions_are_https_only(node):
    r = await node.session.post(node.http + "/api/sessions")
    assert r.status == 403


def make_client_certificate(tmp_path, identity: str):
    """A CA, and a client certificate it issued whose subject CN is the identity; (ca file, cert, key, private)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(65537, 2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "factory CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(65537, 2048)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return (*paths, key)


async def test_a_tls_client_certificate_authenticates(dsn, tmp_path):
    ca_file, cert_file, key_file, private = make_client_certificate(tmp_path, f"300:{DEVICE}")
    async with InProcessNode(dsn, tmp_path, tls_client_ca=ca_file) as node:
        await node.provision("88.101")
        await device_with_key(node, private)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.load_cert_chain(cert_file, key_file)
        value = [{"index": 1, "type": "URL", "data": "by certificate"}]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as client:
            r = await client.put(node.https + f"/api/handles/{TARGET}?index=1", json=value)
            assert r.status == 200, await r.text()
            r = await client.put(node.https + "/api/handles/88.101/ELSEWHERE", json=value)
            assert r.status == 403
        r = await node.session.put(node.url(f"/api/handles/{TARGET}?index=1"), json=value)  # no certificate
        assert r.status == 401


async def test_secret_keys_are_stored_hashed_and_default_to_admin_read(node, dsn):
    r = await node.session.put(node.url("/api/handles/88.101/USER1"), json=[{"index": 300, "type": "HS_SECKEY", "data": "pw-one-two"}],
                               headers=node.auth())
    assert r.status == 201
    anonymous = await (await node.session.get(node.url("/api/handles/88.101/USER1", secure=False))).json()
    assert [v["type"] for v in anonymous["values"]] == ["HS_SIGNATURE"]  # the key got 1100: not for anonymous readers
    grant = {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": "88.101/USER1", "index": 300, "permissions": "011111110011"}}}
    await node.session.put(node.url("/api/handles/88.101/OWNED"), json=[grant], headers=node.auth())
    r = await node.session.put(node.url("/api/handles/88.101/OWNED?index=1"), json=[{"index": 1, "type": "URL", "data": "x"}],
                               headers=basic("300:88.101/USER1", "pw-one-two"))
    assert r.status == 201  # Basic keeps working against the hashed key
    async with db.connection(dsn) as conn:
        rows = await conn.fetch("SELECT handle FROM handles WHERE position($1::bytea in vals) > 0 OR position($2::bytea in vals) > 0",
                                b"pw-one-two", node.admins["88.101"].secret.encode())
    assert rows == []  # neither the new secret nor the admin's is anywhere in clear


async def test_a_secret_key_in_clear_is_hashed_at_its_first_use(node, dsn):
    from registry.model import Handle, HandleValue, Record
    from registry.pg.store import Store

    pool = await db.create_pool(dsn, max_size=1)
    try:  # written as an older idres did: the secret in clear
        await Store(pool).create(Record(Handle.parse("88.101/OLD"), (HandleValue(300, "HS_SECKEY", b"old-secret", permissions=0x0C),)))
    finally:
        await pool.close()
    await node.session.put(node.url("/api/handles/88.101/OLD-OWNED"), headers=node.auth(), json=[
        {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": "88.101/OLD", "index": 300, "permissions": "011111110011"}}}])
    r = await node.session.put(node.url("/api/handles/88.101/OLD-OWNED?index=1"), json=[{"index": 1, "type": "URL", "data": "x"}],
                               headers=basic("300:88.101/OLD", "old-secret"))
    assert r.status == 201
    async with db.connection(dsn) as conn:
        assert await conn.fetchval("SELECT position($1::bytea in vals) FROM handles WHERE handle = '88.101/OLD'", b"old-secret") == 0
    r = await node.session.put(node.url("/api/handles/88.101/OLD-OWNED?index=1"), json=[{"index": 1, "type": "URL", "data": "y"}],
                               headers=basic("300:88.101/OLD", "old-secret"))
    assert r.status == 200  # and it still works


async def test_brute_force_hits_429(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, rate_failed_logins_per_identity=5, rate_failed_logins_per_address=100,
                             rate_window=86400) as node:
        admin = await node.provision("88.101")
        user = str(admin.identity)
        statuses = []
        for n in range(8):
            r = await node.session.put(node.url("/api/handles/88.101/X"), json=[{"index": 1, "type": "URL", "data": "x"}],
                                       headers=basic(user, f"guess-{n}"))
            statuses.append(r.status)
            if r.status == 429:
                assert int(r.headers["Retry-After"]) >= 1
                assert (await r.json())["message"].startswith("too many failed logins")
        assert statuses == [401] * 4 + [429] * 4
        r = await node.session.put(node.url("/api/handles/88.101/X"), json=[{"index": 1, "type": "URL", "data": "x"}],
                                   headers=basic(user, admin.secret))
        assert r.status == 429  # the right secret too, until the window ends


async def test_a_session_works_on_whichever_worker_a_request_reaches(dsn, tmp_path):
    import asyncio
    import time

    from registry.pg.store import Store
    from resolver.config import Settings
    from resolver.keys.site import SiteDescription
    from resolver.ops.provisioning import create_prefix_admin, home_prefix
    from tests.nodes import ServeProcess

    pool = await db.create_pool(dsn, max_size=1)
    try:
        now = int(time.time())
        await home_prefix(Store(pool), SiteDescription(Settings.load(env={})), "88.101", now)
        admin = await create_prefix_admin(Store(pool), "88.101", now)
    finally:
        await pool.close()
    server = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "0", "--workers", "2")
    await asyncio.to_thread(server.start)
    try:
        private = ed25519.Ed25519PrivateKey.generate()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as client:
            node = type("Remote", (), {"session": client, "https": server.https,
                                       "url": lambda self, path, secure=True: server.https + path,
                                       "auth": lambda self: basic(str(admin.identity), admin.secret)})()
            await device_with_key(node, private)
            session_id, nonce = await open_session(client, server.https)
            assert (await answer(client, server.https, session_id, nonce, private, f"300:{DEVICE}")).status == 200
        minimal = handle_header(version="0", sessionId=session_id)
        served: dict[int, int] = {}
        deadline = time.monotonic() + 60
        n = 0
        while set(served) != set(server.ready["workerPids"]):
            assert time.monotonic() < deadline, f"only workers {sorted(served)} answered"
            n += 1
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False, limit=1)) as one:
                pid = (await (await one.get(server.https + "/readyz")).json())["pid"]
                r = await one.put(server.https + f"/api/handles/{TARGET}?index=1",
                                  json=[{"index": 1, "type": "URL", "data": f"v{n}"}], headers=minimal)
                served[pid] = r.status
        assert set(served.values()) == {200}
    finally:
        await asyncio.to_thread(server.stop)
