"""Values over HTTP mean what they say: each input case is refused with a JSON 4xx naming the rule and
nothing stored, or accepted and stored byte for byte as sent; Handle.Net's own HS_PUBKEY and HS_SITE
bytes are stored as they are and the node's signature digests cover exactly them."""

from __future__ import annotations

import base64

import pytest

from registry.jws import Jws, b64url, public_jwk
from registry.model import fold
from tests.db_state import snapshot
from tests.registry.fixtures import ED_A, RSA_PREFIX
from tests.registry.fixtures.handle_net_encodings import HS_PUBKEY, HS_PUBKEY_WITHOUT_TRAILER, HS_SITE, digest_by_hand

URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.com/p/1"}
JWS = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiI4OC4xMDEvWCJ9.AAAA"
LONG = "0.NA/" + "a" * 100_000


def b64(data: bytes) -> dict:
    return {"format": "base64", "value": base64.b64encode(data).decode()}


def admin(handle: str, index=200) -> dict:
    return {"format": "admin", "value": {"handle": handle, "index": index, "permissions": "011111110011"}}


@pytest.fixture
async def seeded(node):
    r = await node.session.put(node.url("/api/handles/88.101/KEEP"), json=[URL_VALUE], headers=node.auth())
    assert r.status == 201
    return node


REFUSED = [
    # (name, value, message fragment): every one gets 400 with responseCode 202
    ("HS_PUBKEY with an invalid RSA modulus", {"index": 300, "type": "HS_PUBKEY",
                                               "data": {"format": "key", "value": {"kty": "RSA", "n": "AA", "e": "AQAB"}}},
     "the modulus must be odd and at least 1024 bits"),
    ("HS_PUBKEY modulus not base64url", {"index": 300, "type": "HS_PUBKEY",
                                         "data": {"format": "key", "value": {"kty": "RSA", "n": "!!!", "e": "AQAB"}}},
     "'n' is not base64url"),
    ("HS_PUBKEY as a string", {"index": 300, "type": "HS_PUBKEY", "data": "ssh-ed25519 AAAA"}, "not a valid HS_PUBKEY value"),
    ("HS_PUBKEY trailing garbage", {"index": 300, "type": "HS_PUBKEY", "data": b64(HS_PUBKEY + b"\x01")}, "unexpected bytes"),
    ("negative ttl", {**URL_VALUE, "ttl": -1}, "a ttl must not be negative"),
    ("negative absolute ttl", {**URL_VALUE, "ttl": "1969-12-31T23:59:00Z"}, "a ttl must not be negative"),
    ("empty type", {**URL_VALUE, "type": ""}, "has an empty type"),
    ("C1 control in the type", {**URL_VALUE, "type": "UR\u0085L"}, "control character (U+0085)"),
    ("HS_ADMIN given string data", {"index": 100, "type": "HS_ADMIN", "data": "0.NA/88.101"}, "not a valid HS_ADMIN value"),
    ("HS_ADMIN given base64 garbage", {"index": 100, "type": "HS_ADMIN", "data": b64(b"\x00\x01\x02")}, "not a valid HS_ADMIN"),
    ("a 100,000-character admin handle", {"index": 100, "type": "HS_ADMIN", "data": admin(LONG)},
     "the handle is 100005 characters long; the limit is 255"),
    ("HS_VLIST given string data", {"index": 200, "type": "HS_VLIST", "data": "300:88.101/ADMIN"}, "not a valid HS_VLIST"),
    ("HS_VLIST with a long member", {"index": 200, "type": "HS_VLIST", "data": {"format": "vlist", "value": [{"handle": LONG, "index": 1}]}},
     "the limit is 255"),
    ("HS_SITE given string data", {"index": 1, "type": "HS_SITE", "data": "127.0.0.1:8000"}, "not a valid HS_SITE value"),
    ("HS_SITE primarySite as a string", {"index": 1, "type": "HS_SITE",
                                         "data": {"format": "site", "value": {"primarySite": "false", "servers": []}}},
     "primarySite must be true or false"),
    ("HS_SITE with a bad server key", {"index": 1, "type": "HS_SITE", "data": {"format": "site", "value": {"servers": [
        {"address": "127.0.0.1", "publicKey": {"format": "base64", "value": "AAAAAQ=="}}]}}}, "public key of server 1"),
    ("HS_CERT that is no JWS", {"index": 400, "type": "HS_CERT", "data": "not a certificate"}, "not a valid HS_CERT value"),
    ("HS_SIGNATURE that is no JWS", {"index": 400, "type": "HS_SIGNATURE", "data": "not a signature at all"},
     "not a valid HS_SIGNATURE value"),
    ("a 100,000-character reference", {**URL_VALUE, "references": [{"handle": LONG, "index": 1}]}, "the limit is 255"),
]


@pytest.mark.parametrize("name, value, fragment", REFUSED, ids=[c[0] for c in REFUSED])
@pytest.mark.parametrize("how", ["create", "replace", "add"])
async def test_refused_with_json_and_nothing_stored(seeded, name, value, fragment, how):
    node = seeded
    path = {"create": "/api/handles/88.101/NEW", "replace": "/api/handles/88.101/KEEP",
            "add": f"/api/handles/88.101/KEEP?index={value['index']}"}[how]
    body = [value] if how == "add" else [URL_VALUE, value] if value["index"] != 1 else [value]
    before = await snapshot(node.dsn)
    r = await node.session.put(node.url(path), json=body, headers=node.auth())
    answer = await r.json()
    assert r.status == 400, answer
    assert answer["responseCode"] == 202
    assert fragment in answer["message"], answer
    assert await snapshot(node.dsn) == before


def stored_data(stored) -> dict[int, bytes]:
    return {v.index: v.data for v in stored.record.values if v.type_key != "HS_SIGNATURE"}


ACCEPTED = [
    # (name, value, the bytes that must be stored)
    ("HS_PUBKEY in Handle.Net's bytes", {"index": 300, "type": "HS_PUBKEY", "data": b64(HS_PUBKEY)}, HS_PUBKEY),
    ("HS_PUBKEY in the older layout", {"index": 300, "type": "HS_PUBKEY", "data": b64(HS_PUBKEY_WITHOUT_TRAILER)},
     HS_PUBKEY_WITHOUT_TRAILER),
    ("HS_PUBKEY as a JWK", {"index": 300, "type": "HS_PUBKEY", "data": {"format": "key", "value": public_jwk(RSA_PREFIX)}},
     HS_PUBKEY),
    ("HS_SITE in Handle.Net's bytes", {"index": 2, "type": "HS_SITE", "data": {"format": "hex", "value": HS_SITE.hex()}}, HS_SITE),
    ("HS_SITE as JSON", {"index": 2, "type": "HS_SITE", "data": {"format": "site", "value": {
        "version": 1, "protocolVersion": "2.10", "serialNumber": 1, "primarySite": True, "multiPrimary": False,
        "attributes": [{"name": "desc", "value": "idres test site"}],
        "servers": [{"serverId": 1, "address": "127.0.0.1", "publicKey": {"format": "key", "value": public_jwk(RSA_PREFIX)},
                     "interfaces": [{"query": True, "admin": False, "protocol": "UDP", "port": 2641},
                                    {"query": True, "admin": True, "protocol": "HTTPS", "port": 8443}]}]}}}, HS_SITE),
    ("HS_CERT of an algorithm idres does not verify",
     {"index": 400, "type": "HS_CERT", "data": b64url(b'{"alg":"SM2"}') + ".eyJzdWIiOiJ4In0.AAAA"},
     (b64url(b'{"alg":"SM2"}') + ".eyJzdWIiOiJ4In0.AAAA").encode()),
    ("ttl 0", {"index": 3, "type": "EMAIL", "data": "a@example.com", "ttl": 0}, b"a@example.com"),
    ("Ed25519 HS_PUBKEY", {"index": 301, "type": "HS_PUBKEY", "data": {"format": "key", "value": public_jwk(ED_A)}}, None),
]


@pytest.mark.parametrize("name, value, expected", ACCEPTED, ids=[c[0] for c in ACCEPTED])
async def test_accepted_and_stored_as_sent(node, store, name, value, expected):
    r = await node.session.put(node.url("/api/handles/88.101/NEW"), json=[URL_VALUE, value], headers=node.auth())
    assert r.status == 201, await r.text()
    stored = await store.get(fold("88.101/NEW"))
    if expected is not None:
        assert stored_data(stored)[value["index"]] == expected
    r = await node.session.get(node.url(f"/api/handles/88.101/NEW?index={value['index']}"))
    shown = (await r.json())["values"][0]
    # read back decoded: keys in either layout, sites with the key inside
    assert shown["data"]["format"] == {"HS_PUBKEY": "key", "HS_SITE": "site"}.get(value["type"], "string")


async def test_handle_net_bytes_are_signed_as_they_are(node, store):
    """The node's HS_SIGNATURE digests over the vectors are the digests of the vectors' own bytes."""
    values = [URL_VALUE, {"index": 2, "type": "HS_SITE", "data": b64(HS_SITE)},
              {"index": 300, "type": "HS_PUBKEY", "data": {"format": "key", "value": public_jwk(RSA_PREFIX)}}]
    r = await node.session.put(node.url("/api/handles/88.101/SITE"), json=values, headers=node.auth())
    assert r.status == 201
    stored = await store.get(fold("88.101/SITE"))
    assert stored_data(stored)[2] == HS_SITE and stored_data(stored)[300] == HS_PUBKEY
    jws = Jws.parse(stored.record.of_type("HS_SIGNATURE")[0].data.decode())
    assert jws.verify(node.keyring.public_key(node.keyring.active.kid))
    digests = {d["index"]: d["digest"] for d in jws.claims()["digests"]["digests"]}
    assert digests[2] == digest_by_hand("HS_SITE", HS_SITE)
    assert digests[300] == digest_by_hand("HS_PUBKEY", HS_PUBKEY)


async def test_a_client_may_resend_the_nodes_own_signature(node, store):
    """A read-modify-write sends the node's HS_SIGNATURE back: it parses, and the node signs anew."""
    r = await node.session.put(node.url("/api/handles/88.101/RMW"), json=[URL_VALUE], headers=node.auth())
    assert r.status == 201
    body = await (await node.session.get(node.url("/api/handles/88.101/RMW"))).json()
    values = [{**v, "data": "https://example.com/changed"} if v["index"] == 1 else v for v in body["values"]]
    r = await node.session.put(node.url("/api/handles/88.101/RMW"), json=values, headers=node.auth())
    assert r.status == 200, await r.text()
    assert stored_data(await store.get(fold("88.101/RMW")))[1] == b"https://example.com/changed"
