"""Values validated by type before they are stored (registry/validation.py): each reserved type decodes,
or the value is refused with InvalidValue naming the value and the rule; nothing is repaired."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from registry.encoding import Writer
from registry.errors import InvalidValue, ProtocolError, ResponseCode
from registry.jws import b64url, public_jwk, sign_compact
from registry.model import TTL_ABSOLUTE, HandleValue, ValueRef
from registry.permissions import AdminGrant, AdminPermission
from registry.pubkeys import jwk_to_pubkey
from registry.validation import ValueLimits, check_value, check_values, nested_handles
from registry.value_json import parse_value
from registry.values import Interface, Server, SiteInfo, admin_to_bytes, vlist_to_bytes
from tests.registry.fixtures import ED_A, RSA_PREFIX
from tests.registry.fixtures.handle_net_encodings import HS_PUBKEY, HS_PUBKEY_WITHOUT_TRAILER, HS_SITE

LONG_HANDLE = "0.NA/88.101/" + "a" * 100_000
GRANT = admin_to_bytes(AdminGrant(ValueRef(200, "0.NA/88.101"), AdminPermission.from_bits("011111110011")))
JWS = sign_compact(ED_A, b'{"sub":"88.101/X"}')
SM2_JWS = b64url(b'{"alg":"SM2"}') + "." + b64url(b'{"sub":"88.101/X"}') + ".AAAA"


def rsa_key(e: int, n: int, *, trailer: bool = True) -> bytes:
    w = Writer().text("RSA_PUB_KEY").int2(0).bytes(e.to_bytes(e.bit_length() // 8 + 1, "big"))
    w.bytes(n.to_bytes(n.bit_length() // 8 + 1, "big"))
    return w.int4(0).getvalue() if trailer else w.getvalue()


def site_bytes(**changes) -> bytes:
    server = Server(1, "127.0.0.1", changes.pop("key", b""), changes.pop("interfaces", (Interface(3, 8443),)))
    return SiteInfo(servers=(server,), **changes).to_bytes()


def raw_admin(perms: int, handle: str, index: int) -> bytes:
    return Writer().uint2(perms).text(handle).int4(index).getvalue()


MODULUS = RSA_PREFIX.public_key().public_numbers().n

REFUSED = [
    # (name, value, message fragment)
    ("empty type", HandleValue(1, "", b"x"), "empty type"),
    ("blank type", HandleValue(1, "  ", b"x"), "empty type"),
    ("C1 control in the type", HandleValue(1, "U\x85RL", b"x"), "control character (U+0085)"),
    ("negative ttl", HandleValue(1, "URL", b"x", ttl=-1), "must not be negative"),
    ("negative absolute ttl", HandleValue(1, "URL", b"x", ttl=-5, ttl_type=TTL_ABSOLUTE), "must not be negative"),
    ("HS_ADMIN given string data", HandleValue(100, "HS_ADMIN", b"0.NA/88.101"), "not a valid HS_ADMIN value"),
    ("HS_ADMIN in lower case, string data", HandleValue(100, "hs_admin", b"admin"), "not a valid HS_ADMIN value"),
    ("HS_ADMIN bits past twelve", HandleValue(100, "HS_ADMIN", raw_admin(0x1FFF, "0.NA/88.101", 200)), "twelve defined"),
    ("a 100,000-character admin handle", HandleValue(100, "HS_ADMIN", raw_admin(0xFFF, LONG_HANDLE, 200)), "the limit is 255"),
    ("admin handle without a slash", HandleValue(100, "HS_ADMIN", raw_admin(0xFFF, "88.101", 200)), "is not a handle"),
    ("admin handle with a control", HandleValue(100, "HS_ADMIN", raw_admin(0xFFF, "0.NA/88\x85.101", 200)), "U+0085"),
    ("negative admin index", HandleValue(100, "HS_ADMIN", raw_admin(0xFFF, "0.NA/88.101", -1)), "negative"),
    ("HS_VLIST given string data", HandleValue(200, "HS_VLIST", b"300:88.101/ADMIN"), "not a valid HS_VLIST value"),
    ("HS_VLIST long member", HandleValue(200, "HS_VLIST", vlist_to_bytes([ValueRef(300, LONG_HANDLE)])), "the limit is 255"),
    ("HS_SITE given string data", HandleValue(1, "HS_SITE", b"127.0.0.1:8000"), "not a valid HS_SITE value"),
    ("HS_SITE.PREFIX garbage", HandleValue(1, "HS_SITE.PREFIX", b"\x00\x01"), "not a valid HS_SITE.PREFIX value"),
    ("HS_NA_DELEGATE trailing bytes", HandleValue(1, "HS_NA_DELEGATE", HS_SITE + b"\x00"), "unexpected bytes"),
    ("HS_SITE service type 4", HandleValue(1, "HS_SITE", HS_SITE[:-12] + b"\x04" + HS_SITE[-11:]), "service type 0–3"),
    ("HS_SITE transport 9", HandleValue(1, "HS_SITE", HS_SITE[:-5] + b"\x09" + HS_SITE[-4:]), "transport"),
    ("HS_SITE unknown flag", HandleValue(1, "HS_SITE", HS_SITE[:6] + b"\x81" + HS_SITE[7:]), "flags"),
    ("HS_SITE port 70000", HandleValue(1, "HS_SITE", HS_SITE[:-4] + (70000).to_bytes(4, "big")), "port 70000"),
    ("HS_SITE server key garbage", HandleValue(1, "HS_SITE", site_bytes(key=b"\x00\x00\x00\x03abc")), "public key of server 1"),
    ("HS_SITE server key modulus 0", HandleValue(1, "HS_SITE", site_bytes(key=rsa_key(65537, 0))), "public key of server 1"),
    ("HS_SITE long attribute", HandleValue(1, "HS_SITE", site_bytes(attributes=(("desc", "x" * 2000),))), "the limit is 1024"),
    ("HS_SITE long hash filter", HandleValue(1, "HS_SITE", site_bytes(hash_filter="x" * 2000)), "the limit is 1024"),
    ("HS_PUBKEY modulus 0 ('AA')", HandleValue(300, "HS_PUBKEY", rsa_key(65537, 0)), "at least 1024 bits"),
    ("HS_PUBKEY even modulus", HandleValue(300, "HS_PUBKEY", rsa_key(65537, MODULUS + 1)), "must be odd"),
    ("HS_PUBKEY 512-bit modulus", HandleValue(300, "HS_PUBKEY", rsa_key(65537, 2**511 + 1)), "at least 1024 bits"),
    ("HS_PUBKEY even exponent", HandleValue(300, "HS_PUBKEY", rsa_key(65536, MODULUS)), "e must be odd"),
    ("HS_PUBKEY string data", HandleValue(300, "HS_PUBKEY", b"ssh-rsa AAAA"), "not a valid HS_PUBKEY value"),
    ("HS_PUBKEY unknown kind", HandleValue(300, "HS_PUBKEY", Writer().text("EC_PUB_KEY").int2(0).getvalue()), "unknown public key"),
    ("HS_PUBKEY short Ed25519", HandleValue(300, "HS_PUBKEY", Writer().text("Ed25519_PUB_KEY").int2(0).bytes(b"x" * 31).getvalue()),
     "Ed25519"),
    ("HS_PUBKEY small DSA", HandleValue(300, "HS_PUBKEY", Writer().text("DSA_PUB_KEY").int2(0).bytes(b"\x05").bytes(b"\x07")
                                        .bytes(b"\x02").bytes(b"\x03").getvalue()), "DSA key is not a valid public key"),
    ("HS_CERT not a JWS", HandleValue(400, "HS_CERT", b"not a certificate"), "three parts"),
    ("HS_CERT payload not JSON", HandleValue(400, "HS_CERT", (JWS.split(".")[0] + ".bm90IGpzb24." + "AAAA").encode()),
     "payload is not a JSON object"),
    ("HS_CERT header without alg", HandleValue(400, "HS_CERT", (b64url(b"{}") + ".e30.AAAA").encode()), "no algorithm"),
    ("HS_CERT not base64url", HandleValue(400, "HS_CERT", b"e30=.e30.AAAA"), "not base64url"),
    ("HS_SIGNATURE not a JWS", HandleValue(400, "HS_SIGNATURE", b"not a signature at all"), "three parts"),
    ("HS_SIGNATURE not ASCII", HandleValue(400, "HS_SIGNATURE", "é.e30.AA".encode()), "ASCII"),
    ("a 100,000-character reference", HandleValue(1, "URL", b"x", references=(ValueRef(1, LONG_HANDLE),)), "the limit is 255"),
    ("a reference with a control", HandleValue(1, "URL", b"x", references=(ValueRef(1, "88.101/\x9bX"),)), "U+009B"),
]


@pytest.mark.parametrize("name, value, fragment", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(name, value, fragment):
    with pytest.raises(InvalidValue) as caught:
        check_value(value)
    assert caught.value.response_code == ResponseCode.INVALID_VALUE
    assert fragment in caught.value.message
    assert f"value {value.index}" in caught.value.message


@pytest.fixture(scope="module")
def dsa_key() -> bytes:
    numbers = dsa.generate_private_key(2048).public_key().public_numbers()
    p = numbers.parameter_numbers
    return jwk_to_pubkey({"kty": "DSA", **{m: b64url(v.to_bytes((v.bit_length() + 7) // 8, "big"))
                                           for m, v in (("y", numbers.y), ("p", p.p), ("q", p.q), ("g", p.g))}})


ACCEPTED = [
    HandleValue(1, "URL", b"https://example.com/"),
    HandleValue(1, "URL", b"x", ttl=0),
    HandleValue(1, "10320/loc", b"<locations/>", references=(ValueRef(0, "88.101/OTHER"),)),
    HandleValue(100, "HS_ADMIN", GRANT),
    HandleValue(100, "HS_ADMIN", admin_to_bytes(AdminGrant(ValueRef(300, "88.101/ADMIN"), AdminPermission(0x0FFF), legacy=True))),
    HandleValue(200, "HS_VLIST", vlist_to_bytes([ValueRef(300, "88.101/ADMIN"), ValueRef(0, "0.NA/88.101")])),
    HandleValue(200, "HS_VLIST", vlist_to_bytes([])),
    HandleValue(1, "HS_SITE", HS_SITE),
    HandleValue(1, "HS_SITE.PREFIX", site_bytes()),
    HandleValue(300, "HS_PUBKEY", HS_PUBKEY),
    HandleValue(300, "HS_PUBKEY", HS_PUBKEY_WITHOUT_TRAILER),
    HandleValue(300, "HS_PUBKEY", jwk_to_pubkey(public_jwk(ED_A))),
    HandleValue(300, "HS_PUBKEY", jwk_to_pubkey(public_jwk(rsa.generate_private_key(3, 1024)))),
    HandleValue(400, "HS_CERT", JWS.encode()),
    HandleValue(400, "HS_CERT", SM2_JWS.encode()),  # a node may keep what it cannot verify
    HandleValue(400, "HS_SIGNATURE", JWS.encode()),
    HandleValue(400, "HS_SIGNATURE", b'{"payload":"e30","signatures":[{"protected":"eyJhbGciOiJSUzI1NiJ9","signature":"AA"}]}'),
    HandleValue(300, "HS_SECKEY", b"\x00\xff any bytes"),
]


@pytest.mark.parametrize("value", ACCEPTED, ids=[f"{v.type}-{i}" for i, v in enumerate(ACCEPTED)])
def test_accepted(value):
    check_value(value)


def test_accepted_dsa(dsa_key):
    check_value(HandleValue(300, "HS_PUBKEY", dsa_key))


def test_nested_handles_follow_the_node_limit():
    value = HandleValue(100, "HS_ADMIN", raw_admin(0xFFF, "0.NA/88.101/" + "a" * 300, 200))
    check_values([value], ValueLimits(max_handle_length=4096))
    with pytest.raises(InvalidValue, match="the limit is 255"):
        check_values([value])


def test_nested_handles_are_listed_with_where_they_sit():
    admin = HandleValue(100, "HS_ADMIN", GRANT, references=(ValueRef(1, "88.101/REF"),))
    group = HandleValue(200, "HS_VLIST", vlist_to_bytes([ValueRef(300, "88.101/A"), ValueRef(301, "88.101/B")]))
    assert [h for _, h in nested_handles(admin)] == ["88.101/REF", "0.NA/88.101"]
    assert nested_handles(group) == [("value 200 (HS_VLIST): member 300:88.101/A", "88.101/A"),
                                     ("value 200 (HS_VLIST): member 301:88.101/B", "88.101/B")]


JSON_REFUSED = [
    # JSON that used to be coerced into something else than what was sent
    ({"format": "site", "value": {"primarySite": "false", "servers": []}}, "primarySite must be true or false"),
    ({"format": "site", "value": {"servers": [{"address": "127.0.0.1", "interfaces": [{"admin": "no"}]}]}}, "interface admin"),
    ({"format": "site", "value": {"protocolVersion": 2.1, "servers": []}}, "protocolVersion must be a string"),
    ({"format": "site", "value": {"attributes": {"desc": 5}, "servers": []}}, "must be a string"),
    ({"format": "admin", "value": {"handle": "0.NA/88.101", "index": 200, "legacyByteLength": "yes"}}, "legacyByteLength"),
    ({"format": "key", "value": {"kty": "RSA", "n": "!!!", "e": "AQAB"}}, "'n' is not base64url"),
    ({"format": "key", "value": {"kty": "RSA", "n": "", "e": "AQAB"}}, "'n' is not base64url"),
]


@pytest.mark.parametrize("data, fragment", JSON_REFUSED, ids=[f[1] for f in JSON_REFUSED])
def test_json_that_would_be_rewritten_is_refused(data, fragment):
    with pytest.raises((InvalidValue, ProtocolError), match=fragment):
        parse_value({"index": 1, "type": "HS_SITE", "data": data})
