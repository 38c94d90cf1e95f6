"""Typed data of reserved value types (registry/values.py): HS_ADMIN, HS_VLIST, HS_SITE, HS_PUBKEY.

Binary layouts from handle-wire.md §1, JSON shapes from handle-http-api.md §3.
"""

from __future__ import annotations

import base64
import functools

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import OKPKey, RSAKey

from registry import values as V
from registry.encoding import DecodeError, Writer
from registry.errors import InvalidValue
from registry.model import ValueRef
from registry.permissions import AdminGrant, AdminPermission as P

UINT2 = st.integers(0, 2**16 - 1)
INT4 = st.integers(0, 2**31 - 1)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


def java_bytes(n: int) -> bytes:
    """A non-negative big integer as Java's BigInteger.toByteArray() (two's complement, minimal)."""
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


def b64url(n: int) -> str:
    raw = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(4, "big") + raw


# =================================================================================================
# HS_ADMIN
# =================================================================================================

ADMIN_KNOWN = bytes.fromhex("07f3" "0000000b" + b"0.NA/88.101".hex() + "000000c8")


def test_admin_known_answer():
    grant = AdminGrant(ValueRef(200, "0.NA/88.101"), P.from_bits("011111110011"))
    assert V.admin_to_bytes(grant) == ADMIN_KNOWN
    assert V.admin_from_bytes(ADMIN_KNOWN) == grant
    assert V.admin_to_json(grant) == {"handle": "0.NA/88.101", "index": 200, "permissions": "011111110011"}
    assert list(V.admin_to_json(grant)) == ["handle", "index", "permissions"]


def test_admin_all_permissions_known_answer():
    grant = AdminGrant(ValueRef(300, "88.101/ADMIN"), P.all())
    assert V.admin_to_bytes(grant) == bytes.fromhex("0fff" "0000000c" + b"88.101/ADMIN".hex() + "0000012c")


def test_admin_legacy_known_answer():
    legacy = bytes.fromhex("000007f3" "0000000b" + b"0.NA/88.101".hex() + "000000c8")
    grant = V.admin_from_bytes(legacy)
    assert grant.legacy is True
    assert grant.ref == ValueRef(200, "0.NA/88.101")
    assert grant.permissions == 0x07F3
    assert V.admin_to_bytes(grant) == legacy
    assert V.admin_to_json(grant) == {
        "handle": "0.NA/88.101",
        "index": 200,
        "permissions": "011111110011",
        "legacyByteLength": True,
    }


def test_admin_permission_bits_beyond_twelve_are_not_an_admin_grant():
    """Bits the 12-character form cannot show would be lost in JSON (and break signed digests)."""
    data = bytes.fromhex("ffff" "00000003" + b"a/b".hex() + "00000001")
    with pytest.raises(DecodeError, match="beyond the twelve"):
        V.admin_from_bytes(data)
    from registry.model import HandleValue
    from registry.value_json import data_to_json, parse_data

    shown = data_to_json(HandleValue(100, "HS_ADMIN", data))
    assert shown["format"] == "base64"
    assert parse_data(shown, 100) == data  # byte-exact through JSON


@pytest.mark.parametrize(
    "data",
    [b"", b"\x07", bytes.fromhex("07f3" "0000000b") + b"0.NA", ADMIN_KNOWN + b"\x00", ADMIN_KNOWN[:-1]],
)
def test_admin_from_bytes_rejects_malformed(data):
    with pytest.raises(DecodeError):
        V.admin_from_bytes(data)


admin_grants = st.builds(
    AdminGrant,
    ref=st.builds(ValueRef, index=INT4, handle=texts),
    permissions=st.integers(0, 0x0FFF).map(P),
    legacy=st.booleans(),
)


@given(admin_grants)
def test_admin_bytes_round_trip(grant):
    data = V.admin_to_bytes(grant)
    assert len(data) == (4 if grant.legacy else 2) + 4 + len(grant.ref.handle.encode()) + 4
    assert V.admin_from_bytes(data) == grant


@given(admin_grants)
def test_admin_json_round_trip(grant):
    assert V.admin_from_json(V.admin_to_json(grant)) == grant


@given(admin_grants)
def test_admin_bytes_json_bytes_round_trip(grant):
    data = V.admin_to_bytes(grant)
    assert V.admin_to_bytes(V.admin_from_json(V.admin_to_json(V.admin_from_bytes(data)))) == data


@pytest.mark.parametrize(
    "perms, mask",
    [
        ("011111110011", 0x07F3),
        ("111111111111", 0x0FFF),
        ("1", 0x0001),
        ("10", 0x0002),
        ("110000", 0x0030),
        ("*", 0x0FFF),
        (True, 0x0FFF),
        (False, 0),
        (0x07F3, 0x07F3),
        (0, 0),
        ([True, False, True], 0b101),
        ([1, 1, 0, 0, 1], 0b10011),
        ([False] * 11 + [True], 0x0800),
    ],
)
def test_admin_from_json_permission_forms(perms, mask):
    grant = V.admin_from_json({"handle": "0.NA/88.101", "index": 200, "permissions": perms})
    assert int(grant.permissions) == mask


@pytest.mark.parametrize("index, expected", [(200, 200), ("200", 200), (" 300 ", 300)])
def test_admin_from_json_index_forms(index, expected):
    assert V.admin_from_json({"handle": "a/b", "index": index, "permissions": "1"}).ref.index == expected


@pytest.mark.parametrize(
    "data",
    [
        {"index": 200, "permissions": "1"},
        {"handle": 5, "index": 200},
        {"handle": "a/b", "index": "x"},
        {"handle": "a/b", "index": True},
        {"handle": "a/b", "index": 1, "permissions": "2"},
        {"handle": "a/b", "index": 1, "permissions": "1" * 13},
        {"handle": "a/b", "index": 1, "permissions": 4096},
        {"handle": "a/b", "index": 1, "permissions": -1},
        {"handle": "a/b", "index": 1, "permissions": {"x": 1}},
        "a/b",
        None,
    ],
)
def test_admin_from_json_rejects_bad_input(data):
    with pytest.raises(InvalidValue):
        V.admin_from_json(data)


# =================================================================================================
# HS_VLIST
# =================================================================================================


def test_vlist_known_answer():
    refs = [ValueRef(300, "0.NA/88.101"), ValueRef(1, "88.101/g")]
    data = bytes.fromhex(
        "00000002" "0000000b" + b"0.NA/88.101".hex() + "0000012c" "00000008" + b"88.101/g".hex() + "00000001"
    )
    assert V.vlist_to_bytes(refs) == data
    assert V.vlist_from_bytes(data) == refs
    assert V.vlist_to_json(refs) == [{"handle": "0.NA/88.101", "index": 300}, {"handle": "88.101/g", "index": 1}]
    assert V.vlist_to_bytes([]) == b"\x00\x00\x00\x00"


vlists = st.lists(st.builds(ValueRef, index=INT4, handle=texts), max_size=6)


@given(vlists)
def test_vlist_round_trips(refs):
    data = V.vlist_to_bytes(refs)
    assert V.vlist_from_bytes(data) == refs
    assert V.vlist_from_json(V.vlist_to_json(refs)) == refs
    assert V.vlist_to_bytes(V.vlist_from_json(V.vlist_to_json(V.vlist_from_bytes(data)))) == data


def test_vlist_from_json_accepts_numeric_string_index():
    assert V.vlist_from_json([{"handle": "a/b", "index": "300"}]) == [ValueRef(300, "a/b")]


@pytest.mark.parametrize("data", [{"handle": "a/b"}, "a/b", None, [{"index": 1}], [{"handle": "a/b", "index": "x"}]])
def test_vlist_from_json_rejects_bad_input(data):
    with pytest.raises(InvalidValue):
        V.vlist_from_json(data)


def test_vlist_entry_that_is_not_an_object_is_invalid_value():
    # DESIGN §8: bad input gets a registry error naming what was wrong, not an AttributeError
    for item in ("300:a/b", 300, None, ["a/b", 300]):
        with pytest.raises(InvalidValue):
            V.vlist_from_json([item])


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00", b"\x00\x00\x00\x01\x00\x00\x00\x03a/b"])
def test_vlist_from_bytes_rejects_malformed(data):
    with pytest.raises(DecodeError):
        V.vlist_from_bytes(data)


# =================================================================================================
# HS_PUBKEY
# =================================================================================================


@functools.cache
def rsa_keys() -> tuple[rsa.RSAPublicKey, ...]:
    return tuple(rsa.generate_private_key(65537, 2048).public_key() for _ in range(3)) + (
        rsa.generate_private_key(3, 2048).public_key(),
    )


@functools.cache
def dsa_keys() -> tuple[dsa.DSAPublicKey, ...]:
    return tuple(dsa.generate_private_key(size).public_key() for size in (1024, 2048))


def rsa_bytes(e: int, n: int, *, handle_net: bool = True) -> bytes:
    """An RSA key in Handle.Net's layout (with the int4 0 after the modulus), or in the older one without it."""
    w = Writer().text("RSA_PUB_KEY").int2(0).bytes(java_bytes(e)).bytes(java_bytes(n))
    return w.int4(0).getvalue() if handle_net else w.getvalue()


def dsa_bytes(q: int, p: int, g: int, y: int) -> bytes:
    w = Writer().text("DSA_PUB_KEY").int2(0)
    for n in (q, p, g, y):
        w.bytes(java_bytes(n))
    return w.getvalue()


def test_rsa_key_known_answer():
    # e = 65537, n = 0x8001 (high bit set: Java adds a leading zero byte), then Handle.Net's int4 0
    fields = "0000000b" + b"RSA_PUB_KEY".hex() + "0000" "00000003" "010001" "00000003" "008001"
    data = bytes.fromhex(fields + "00000000")
    assert V.pubkey_to_jwk(data) == {"kty": "RSA", "n": "gAE", "e": "AQAB"}
    assert V.jwk_to_pubkey({"kty": "RSA", "n": "gAE", "e": "AQAB"}) == data
    # the older layout, without the int4 0, reads as the same key
    assert V.pubkey_to_jwk(bytes.fromhex(fields)) == {"kty": "RSA", "n": "gAE", "e": "AQAB"}


def test_dsa_key_known_answer():
    data = bytes.fromhex(
        "0000000b" + b"DSA_PUB_KEY".hex() + "0000"
        "00000001" "05"  # q
        "00000002" "00ff"  # p (high bit set)
        "00000001" "02"  # g
        "00000001" "03"  # y
    )
    jwk = V.pubkey_to_jwk(data)
    assert jwk == {"kty": "DSA", "y": "Aw", "p": "_w", "q": "BQ", "g": "Ag"}
    assert V.jwk_to_pubkey(jwk) == data


def test_ed25519_key_known_answer():
    x = bytes(range(32))
    data = bytes.fromhex("0000000f") + b"Ed25519_PUB_KEY" + b"\x00\x00" + b"\x00\x00\x00\x20" + x
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(x).rstrip(b"=").decode()}
    assert V.pubkey_to_jwk(data) == jwk
    assert V.jwk_to_pubkey(jwk) == data


@pytest.mark.parametrize("index", range(4))
def test_real_rsa_key_bytes_json_bytes(index):
    key = rsa_keys()[index]
    numbers = key.public_numbers()
    data = rsa_bytes(numbers.e, numbers.n)
    jwk = V.pubkey_to_jwk(data)
    assert jwk["kty"] == "RSA"
    for member in ("n", "e"):
        assert "=" not in jwk[member]
        assert base64.urlsafe_b64decode(jwk[member] + "=" * (-len(jwk[member]) % 4))[0] != 0  # no leading zero
    assert unb64url(jwk["n"]) == numbers.n
    assert unb64url(jwk["e"]) == numbers.e
    assert V.jwk_to_pubkey(jwk) == data
    # an independent JOSE implementation reads the same key from our JWK, and writes the JWK we read
    assert RSAKey.import_key(jwk).raw_value.public_numbers() == numbers
    theirs = RSAKey.import_key(key).as_dict()
    assert V.jwk_to_pubkey(theirs) == data


@pytest.mark.parametrize("index", range(2))
def test_real_dsa_key_bytes_json_bytes(index):
    key = dsa_keys()[index]
    numbers = key.public_numbers()
    params = numbers.parameter_numbers
    data = dsa_bytes(params.q, params.p, params.g, numbers.y)
    jwk = V.pubkey_to_jwk(data)
    assert jwk["kty"] == "DSA"
    rebuilt = dsa.DSAPublicNumbers(
        unb64url(jwk["y"]), dsa.DSAParameterNumbers(unb64url(jwk["p"]), unb64url(jwk["q"]), unb64url(jwk["g"]))
    )
    assert rebuilt == numbers
    assert V.jwk_to_pubkey(jwk) == data


@given(st.binary(min_size=32, max_size=32))
def test_real_ed25519_key_bytes_json_bytes(seed):
    public = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
    theirs = OKPKey.import_key(public).as_dict()
    x = base64.urlsafe_b64decode(theirs["x"] + "=")
    data = Writer().text("Ed25519_PUB_KEY").int2(0).bytes(x).getvalue()
    jwk = V.pubkey_to_jwk(data)
    assert jwk == {"kty": "OKP", "crv": "Ed25519", "x": theirs["x"]}
    assert V.jwk_to_pubkey(theirs) == data
    assert OKPKey.import_key(jwk).raw_value.public_bytes_raw() == public.public_bytes_raw()


positive_ints = st.integers(0, 2**4200)


@given(positive_ints, positive_ints)
def test_rsa_structure_round_trip(e, n):
    data = rsa_bytes(e, n)
    jwk = V.pubkey_to_jwk(data)
    assert (unb64url(jwk["e"]), unb64url(jwk["n"])) == (e, n)
    assert V.jwk_to_pubkey(jwk) == data


@given(positive_ints, positive_ints, positive_ints, positive_ints)
def test_dsa_structure_round_trip(q, p, g, y):
    data = dsa_bytes(q, p, g, y)
    jwk = V.pubkey_to_jwk(data)
    assert [unb64url(jwk[m]) for m in "qpgy"] == [q, p, g, y]
    assert V.jwk_to_pubkey(jwk) == data


def test_non_minimal_integers_are_normalised():
    data = Writer().text("RSA_PUB_KEY").int2(0).bytes(b"\x00\x00\x01\x00\x01").bytes(b"\x00\x00\x7f").getvalue()
    jwk = V.pubkey_to_jwk(data)
    assert jwk == {"kty": "RSA", "n": "fw", "e": "AQAB"}
    assert V.jwk_to_pubkey(jwk) == rsa_bytes(65537, 0x7F)


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "X25519", "x": "A" * 43},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "RSA", "e": "AQAB"},
        {"kty": "RSA", "n": 5, "e": "AQAB"},
        {"kty": "DSA", "p": "AQ", "q": "AQ", "g": "AQ"},
        {"n": "AQ", "e": "AQAB"},
        {"kty": 1},
        "RSA",
        None,
    ],
)
def test_jwk_to_pubkey_rejects_bad_keys(jwk):
    with pytest.raises(InvalidValue):
        V.jwk_to_pubkey(jwk)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        Writer().text("EC_PUB_KEY").int2(0).getvalue(),
        rsa_bytes(3, 5) + b"\x00",
        rsa_bytes(3, 5)[:-1],
        rsa_bytes(3, 5, handle_net=False) + b"\x00",
        rsa_bytes(3, 5, handle_net=False) + b"\x00\x00\x00\x01",  # only an int4 0 may follow the modulus
        dsa_bytes(1, 2, 3, 4) + b"\x00\x00\x00\x00",  # and only the RSA modulus
        Writer().text("Ed25519_PUB_KEY").int2(0).bytes(bytes(32)).int4(0).getvalue(),
        Writer().text("Ed25519_PUB_KEY").int2(0).getvalue(),
    ],
)
def test_pubkey_to_jwk_rejects_malformed(data):
    with pytest.raises(DecodeError):
        V.pubkey_to_jwk(data)


# =================================================================================================
# HS_SITE
# =================================================================================================

SITE_KNOWN = V.SiteInfo(
    servers=(V.Server(1, "127.0.0.1", b"", (V.Interface(V.TRANSPORTS["TCP"], 2641, query=True, admin=True),)),),
    serial=1,
    attributes=(("desc", "x"),),
)
SITE_KNOWN_BYTES = bytes.fromhex(
    "0001"  # dataFormatVersion
    "02" "0a"  # protocol 2.10
    "0001"  # serial
    "80"  # primary
    "02"  # hash by whole handle
    "00000000"  # hashFilter ""
    "00000001" "00000004" + b"desc".hex() + "00000001" + b"x".hex()
    + "00000001"  # one server
    + "00000001"  # serverId
    + "00" * 12 + "7f000001"  # IPv4 right-aligned in 16 bytes
    + "00000000"  # no public key
    + "00000001" "03" "01" "00000a51"  # admin+query, TCP, 2641
)


def test_site_known_answer_bytes():
    assert SITE_KNOWN.to_bytes() == SITE_KNOWN_BYTES
    assert V.SiteInfo.from_bytes(SITE_KNOWN_BYTES) == SITE_KNOWN


def test_site_known_answer_json():
    out = SITE_KNOWN.to_json()
    assert out == {
        "version": 1,
        "protocolVersion": "2.10",
        "serialNumber": 1,
        "primarySite": True,
        "multiPrimary": False,
        "attributes": [{"name": "desc", "value": "x"}],
        "servers": [
            {
                "serverId": 1,
                "address": "127.0.0.1",
                "interfaces": [{"query": True, "admin": True, "protocol": "TCP", "port": 2641}],
            }
        ],
    }
    assert list(out) == ["version", "protocolVersion", "serialNumber", "primarySite", "multiPrimary", "attributes", "servers"]


def test_site_ipv6_address_bytes():
    site = V.SiteInfo(servers=(V.Server(2, "2001:db8::1"),), primary=False, multi_primary=True, hash_option=0, hash_filter="f")
    data = site.to_bytes()
    assert bytes.fromhex("20010db8000000000000000000000001") in data
    assert data[6] == 0x40  # multi-primary, not primary
    assert data[7] == 0  # hash by prefix
    back = V.SiteInfo.from_bytes(data)
    assert back == site
    out = back.to_json()
    assert out["hashOption"] == 0
    assert out["hashFilter"] == "f"
    assert out["primarySite"] is False and out["multiPrimary"] is True


def test_site_service_types():
    assert V.Interface(0, 1, query=False, admin=False).service_type == 0
    assert V.Interface(0, 1, query=False, admin=True).service_type == 1
    assert V.Interface(0, 1, query=True, admin=False).service_type == 2
    assert V.Interface(0, 1, query=True, admin=True).service_type == 3
    assert V.TRANSPORTS == {"UDP": 0, "TCP": 1, "HTTP": 2, "HTTPS": 3}


def test_site_spec_example_json_to_bytes_and_back():
    key = rsa_keys()[0].public_numbers()
    jwk = {"kty": "RSA", "n": b64url(key.n), "e": "AQAB"}
    example = {
        "version": 1,
        "protocolVersion": "2.10",
        "serialNumber": 1,
        "primarySite": True,
        "multiPrimary": False,
        "attributes": [{"name": "desc", "value": "Example primary"}],
        "servers": [
            {
                "serverId": 1,
                "address": "127.0.0.1",
                "publicKey": {"format": "key", "value": jwk},
                "interfaces": [
                    {"query": True, "admin": True, "protocol": "TCP", "port": 2641},
                    {"query": True, "admin": False, "protocol": "UDP", "port": 2641},
                    {"query": True, "admin": True, "protocol": "HTTP", "port": 8000},
                ],
            }
        ],
    }
    site = V.SiteInfo.from_json(example)
    server = site.servers[0]
    assert server.public_key == rsa_bytes(key.e, key.n)
    assert [(i.transport, i.port, i.service_type) for i in server.interfaces] == [(1, 2641, 3), (0, 2641, 2), (2, 8000, 3)]
    assert V.SiteInfo.from_bytes(site.to_bytes()).to_json() == example


def test_site_legacy_capitalised_json():
    dsa_key = dsa_keys()[0].public_numbers()
    params = dsa_key.parameter_numbers
    key_bytes = dsa_bytes(params.q, params.p, params.g, dsa_key.y)
    legacy = {
        "Version": 1,
        "ProtocolVersion": "2.5",
        "SerialNumber": 3,
        "PrimarySite": False,
        "MultiPrimary": True,
        "HashOption": 1,
        "Attributes": {"desc": "Legacy site", "domain": "example.org"},
        "ServerList": [
            {
                "ServerId": 4,
                "Address": "10.0.0.4",
                "PublicKey": {"format": "BASE64", "value": base64.b64encode(key_bytes).decode()},
                "InterfaceList": [{"Query": True, "Admin": False, "Protocol": "udp", "Port": 2641}],
            }
        ],
    }
    site = V.SiteInfo.from_json(legacy)
    assert site.protocol == (2, 5)
    assert site.serial == 3
    assert site.primary is False and site.multi_primary is True
    assert site.hash_option == 1
    assert site.attributes == (("desc", "Legacy site"), ("domain", "example.org"))
    (server,) = site.servers
    assert (server.server_id, server.address, server.public_key) == (4, "10.0.0.4", key_bytes)
    assert server.interfaces == (V.Interface(0, 2641, query=True, admin=False),)
    # the base64 DSA_PUB_KEY is rendered back as a JWK
    assert site.to_json()["servers"][0]["publicKey"]["format"] == "key"
    assert site.to_json()["servers"][0]["publicKey"]["value"]["kty"] == "DSA"


def test_site_public_key_as_hex_and_opaque_bytes():
    site = V.SiteInfo.from_json({"servers": [{"address": "::1", "publicKey": {"format": "hex", "value": "0102ff"}}]})
    assert site.servers[0].public_key == b"\x01\x02\xff"
    # bytes that are no Handle key encoding are shown as base64
    assert site.to_json()["servers"][0]["publicKey"] == {"format": "base64", "value": "AQL/"}


def test_site_json_defaults():
    site = V.SiteInfo.from_json({"servers": [{"address": "192.0.2.1", "interfaces": [{}]}]})
    assert site.version == 1
    assert site.protocol == (2, 10)
    assert site.serial == 1
    assert site.primary is True
    assert site.hash_option == 2
    assert site.servers[0].server_id == 1
    assert site.servers[0].interfaces == (V.Interface(1, 2641, query=True, admin=False),)


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"protocolVersion": "two", "servers": []},
        {"servers": {}},
        {"servers": ["x"]},
        {"servers": [{"serverId": 1}]},
        {"servers": [{"address": "127.0.0.1", "interfaces": [{"protocol": "SCTP"}]}]},
        {"servers": [{"address": "127.0.0.1", "interfaces": {}}]},
        {"servers": [{"address": "127.0.0.1", "interfaces": ["x"]}]},
        {"servers": [{"address": "127.0.0.1", "interfaces": [{"port": "x"}]}]},
        {"servers": [{"address": "127.0.0.1", "publicKey": "00"}]},
        {"servers": [{"address": "127.0.0.1", "publicKey": {"format": "base64", "value": "!!"}}]},
        {"servers": [{"address": "127.0.0.1", "publicKey": {"format": "hex", "value": "zz"}}]},
        {"servers": [{"address": "127.0.0.1", "publicKey": {"format": "pem", "value": "x"}}]},
        {"servers": [], "attributes": "desc"},
        {"servers": [], "attributes": [{"value": "x"}]},
        {"servers": [], "serialNumber": "x"},
    ],
)
def test_site_from_json_rejects_bad_input(data):
    with pytest.raises(InvalidValue):
        V.SiteInfo.from_json(data)


def test_site_address_must_be_an_ip_address():
    with pytest.raises(InvalidValue, match="not an IP address"):
        V.SiteInfo.from_json({"servers": [{"address": "example.org"}]}).to_bytes()


@pytest.mark.parametrize(
    "field, value",
    [("serialNumber", 70000), ("version", 2**16), ("hashOption", 258)],
)
def test_site_fields_out_of_wire_range_are_invalid_value(field, value):
    # handle-wire.md §1: serialNumber/version are int2, hashOption a byte. Such input must be a clear
    # InvalidValue (DESIGN §8), neither a struct.error nor silently truncated bytes.
    with pytest.raises(InvalidValue):
        V.SiteInfo.from_json({field: value, "servers": []}).to_bytes()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        SITE_KNOWN_BYTES[:-1],
        SITE_KNOWN_BYTES + b"\x00",  # trailing bytes are an error (CNRI decoder)
        SITE_KNOWN_BYTES[:10] + b"\x7f\xff\xff\xff",
    ],
)
def test_site_from_bytes_rejects_malformed(data):
    with pytest.raises(DecodeError):
        V.SiteInfo.from_bytes(data)


@settings(max_examples=200)
@given(st.binary(max_size=120))
def test_site_and_key_garbage_raises_only_invalid_value(garbage):
    for decode in (V.SiteInfo.from_bytes, V.pubkey_to_jwk, V.admin_from_bytes, V.vlist_from_bytes):
        try:
            decode(garbage)
        except InvalidValue:
            pass


def _ipv6_not_v4_like(ip) -> bool:
    return ip.packed[:12] != bytes(12)


addresses = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).filter(_ipv6_not_v4_like).map(str),
)


@st.composite
def public_keys(draw):
    kind = draw(st.sampled_from(["none", "rsa", "dsa", "ed25519", "opaque"]))
    if kind == "none":
        return b""
    if kind == "rsa":
        n = draw(st.sampled_from(rsa_keys())).public_numbers()
        return rsa_bytes(n.e, n.n)
    if kind == "dsa":
        n = draw(st.sampled_from(dsa_keys())).public_numbers()
        return dsa_bytes(n.parameter_numbers.q, n.parameter_numbers.p, n.parameter_numbers.g, n.y)
    if kind == "ed25519":
        return Writer().text("Ed25519_PUB_KEY").int2(0).bytes(draw(st.binary(min_size=32, max_size=32))).getvalue()
    return b"\x01" + draw(st.binary(max_size=40))  # length prefix too large: not a key encoding


interfaces = st.builds(V.Interface, transport=st.integers(0, 3), port=UINT2, query=st.booleans(), admin=st.booleans())
servers = st.builds(
    V.Server,
    server_id=INT4,
    address=addresses,
    public_key=public_keys(),
    interfaces=st.lists(interfaces, max_size=4).map(tuple),
)
sites = st.builds(
    V.SiteInfo,
    servers=st.lists(servers, max_size=3).map(tuple),
    serial=UINT2,
    primary=st.booleans(),
    multi_primary=st.booleans(),
    protocol=st.tuples(st.integers(0, 255), st.integers(0, 255)),
    version=UINT2,
    hash_option=st.integers(0, 255),
    hash_filter=texts,
    attributes=st.lists(st.tuples(texts, texts), max_size=4).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(sites)
def test_site_bytes_round_trip(site):
    assert V.SiteInfo.from_bytes(site.to_bytes()) == site


@settings(max_examples=150, deadline=None)
@given(sites)
def test_site_json_round_trip(site):
    assert V.SiteInfo.from_json(site.to_json()) == site


@settings(max_examples=150, deadline=None)
@given(sites)
def test_site_bytes_json_bytes_round_trip(site):
    data = site.to_bytes()
    assert V.SiteInfo.from_json(V.SiteInfo.from_bytes(data).to_json()).to_bytes() == data
