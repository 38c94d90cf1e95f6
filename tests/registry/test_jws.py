"""Compact JWS and JWK (registry/jws.py): round trips, JSON serialization, errors, RFC 7638 thumbprints.

Keys are fixed throwaway test keys (tests/registry/fixtures); the RFC 8037 Appendix A key and the
RFC 7638 §3.1 key give known answers that do not depend on this code.
"""

from __future__ import annotations

import base64
import warnings

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jws as jose_jws
from joserfc.jwk import OKPKey, RSAKey

from registry.errors import IdresError
from registry.jws import (
    EDDSA,
    RS256,
    Jws,
    JwsError,
    algorithm_for,
    b64url,
    key_from_jwk,
    public_jwk,
    same_key,
    sign_bytes,
    sign_compact,
    thumbprint,
    unb64url,
    verify_bytes,
)

from tests.registry.fixtures import ED_A, ED_B, RSA_PREFIX, RSA_ROOT, load_key  # noqa: F401

# RFC 8037 Appendix A.1/A.3/A.4: the Ed25519 example key, its thumbprint and the JWS of A.4.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_JWS = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgd"
        "AZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCu"
        "r-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# The publicKey JWK Handle.Net 9 wrote for rsa_prefix.pem (vectors.json, prefix certificate).
PREFIX_JWK_N = (
    "v74Y5YVkEgnSLuLib2-Oh1u0m9VxQ7yBXT07qeDp1NL0n-A2CCTB7w-0j7rhi3S8d85cK0vmPKAn4Qj0yqJ34qe0lz3dq7dhstIpieXzF0k3cS1n"
    "FxQAO7NVgnAPWx7q6RXpQqG4-FAngr_XOUjd2wCiDc5Le8rL1J50GTLo5rbnIJOWuWl2kXRfdLhiBe0C286-MHl8mHbU1RLuB8dc3LBMGvp5u8"
    "30tv81Ojr4hOO5cazKYJwFmrJoBogtyK4lVhoXRyr237hXOPixoiy04YGzSG2OzfvKtewtQQOsX4WWvGJB6iQ9YWiEY2mnEEMLJx1tGSSwOrlum"
    "d56iflWEQ"
)

PAYLOAD = orjson.dumps({"iss": "300:0.NA/21.T14999", "sub": "21.T14999/ABC", "iat": 1700000000})


def rfc8037_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(unb64url(RFC8037_D))


def encode_part(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def with_header(header: bytes, payload: str = "e30", signature: str = "AAAA") -> str:
    return f"{encode_part(header)}.{payload}.{signature}"


# --- compact round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "alg", "header"),
    [(ED_A, EDDSA, b'{"alg":"EdDSA"}'), (RSA_PREFIX, RS256, b'{"alg":"RS256"}')],
    ids=["EdDSA", "RS256"],
)
def test_compact_round_trip(key, alg, header):
    token = sign_compact(key, PAYLOAD)
    head, body, sig = token.split(".")
    assert base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)) == header  # exactly the alg, nothing else
    assert "=" not in token and "+" not in token and "/" not in token
    parsed = Jws.parse(token)
    assert parsed.alg == alg
    assert parsed.payload == PAYLOAD
    assert parsed.signing_input == f"{head}.{body}".encode("ascii")
    assert parsed.signature == unb64url(sig)
    assert parsed.claims() == orjson.loads(PAYLOAD)
    assert parsed.verify(key.public_key())
    assert algorithm_for(key) == algorithm_for(key.public_key()) == alg


def test_rs256_header_is_handle_nets_exactly():
    assert sign_compact(RSA_PREFIX, PAYLOAD).split(".")[0] == "eyJhbGciOiJSUzI1NiJ9"


def test_eddsa_matches_rfc8037_appendix_a4():
    key = rfc8037_key()
    assert sign_compact(key, b"Example of Ed25519 signing") == RFC8037_JWS
    assert Jws.parse(RFC8037_JWS).verify(key.public_key())


def test_rs256_is_deterministic_and_eddsa_too():
    assert sign_compact(RSA_PREFIX, PAYLOAD) == sign_compact(RSA_PREFIX, PAYLOAD)
    assert sign_compact(ED_A, PAYLOAD) == sign_compact(ED_A, PAYLOAD)


@pytest.mark.parametrize("key", [ED_A, RSA_PREFIX], ids=["EdDSA", "RS256"])
def test_verify_fails_with_another_key_or_a_changed_payload(key):
    other = ED_B if key is ED_A else RSA_ROOT
    token = sign_compact(key, PAYLOAD)
    assert not Jws.parse(token).verify(other.public_key())
    head, _body, sig = token.split(".")
    forged = f"{head}.{encode_part(PAYLOAD.replace(b'ABC', b'ABD'))}.{sig}"
    assert not Jws.parse(forged).verify(key.public_key())
    flipped = bytearray(unb64url(sig))
    flipped[len(flipped) // 2] ^= 0x01
    assert not Jws.parse(f"{head}.{token.split('.')[1]}.{b64url(bytes(flipped))}").verify(key.public_key())


def test_verify_is_false_when_alg_and_key_type_disagree():
    rsa_token = Jws.parse(sign_compact(RSA_PREFIX, PAYLOAD))
    ed_token = Jws.parse(sign_compact(ED_A, PAYLOAD))
    assert rsa_token.verify(ED_A.public_key()) is False
    assert ed_token.verify(RSA_PREFIX.public_key()) is False
    assert verify_bytes(ED_A.public_key(), RS256, ed_token.signature, ed_token.signing_input) is False
    assert verify_bytes(ED_A.public_key(), EDDSA, b"short", ed_token.signing_input) is False


def test_sign_bytes_matches_the_signature_part():
    token = sign_compact(ED_A, PAYLOAD)
    parsed = Jws.parse(token)
    assert sign_bytes(ED_A, parsed.signing_input) == parsed.signature


def test_parse_strips_surrounding_whitespace():
    token = sign_compact(ED_A, PAYLOAD)
    assert Jws.parse(f"  {token}\n") == Jws.parse(token)


def test_parse_accepts_padded_base64url():
    head, body, sig = sign_compact(RSA_PREFIX, PAYLOAD).split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)
    parsed = Jws.parse(f"{head}.{body}.{pad(sig)}")
    assert parsed.signature == unb64url(sig)
    assert parsed.verify(RSA_PREFIX.public_key())


# --- interop with joserfc ----------------------------------------------------------------------------


def test_joserfc_verifies_our_rs256_and_we_verify_its():
    ours = sign_compact(RSA_PREFIX, PAYLOAD)
    key = RSAKey.import_key(public_jwk(RSA_PREFIX))
    assert jose_jws.deserialize_compact(ours, key, algorithms=["RS256"]).payload == PAYLOAD
    private = RSAKey.import_key(RSA_PREFIX.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    theirs = jose_jws.serialize_compact({"alg": "RS256"}, PAYLOAD, private, algorithms=["RS256"])
    assert theirs == ours  # RS256 is deterministic and the header is the same
    assert Jws.parse(theirs).verify(RSA_PREFIX.public_key())


def test_joserfc_verifies_our_eddsa_and_we_verify_its():
    ours = sign_compact(ED_A, PAYLOAD)
    key = OKPKey.import_key(public_jwk(ED_A))
    private = OKPKey.import_key(ED_A.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags "EdDSA" as deprecated by RFC 9864
        assert jose_jws.deserialize_compact(ours, key, algorithms=["EdDSA"]).payload == PAYLOAD
        theirs = jose_jws.serialize_compact({"alg": "EdDSA"}, PAYLOAD, private, algorithms=["EdDSA"])
    assert Jws.parse(theirs).verify(ED_A.public_key())
    assert Jws.parse(theirs).payload == PAYLOAD


# --- JSON serialization --------------------------------------------------------------------------------


def test_json_serialization_uses_the_first_signature():
    token = sign_compact(RSA_PREFIX, PAYLOAD)
    head, body, sig = token.split(".")
    other_head, _other_body, other_sig = sign_compact(ED_A, PAYLOAD).split(".")
    text = orjson.dumps({
        "payload": body,
        "signatures": [{"protected": head, "signature": sig}, {"protected": other_head, "signature": other_sig}],
    }).decode()
    parsed = Jws.parse(text)
    assert parsed == Jws.parse(token)
    assert parsed.alg == RS256
    assert parsed.verify(RSA_PREFIX.public_key())
    assert not parsed.verify(ED_A.public_key())


def test_json_serialization_from_joserfc_general_form():
    private = RSAKey.import_key(RSA_PREFIX.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    general = jose_jws.serialize_json([{"protected": {"alg": "RS256"}}], PAYLOAD, private)
    assert set(general) == {"payload", "signatures"}
    parsed = Jws.parse(orjson.dumps(general).decode())
    assert parsed.alg == RS256
    assert parsed.payload == PAYLOAD
    assert parsed.verify(RSA_PREFIX.public_key())


# --- errors: always JwsError -----------------------------------------------------------------------------


def test_jws_error_is_an_idres_error():
    assert issubclass(JwsError, IdresError)


@pytest.mark.parametrize(
    "header",
    [
        b'{"alg":"none"}', b'{"alg":"HS256"}', b'{"alg":"ES256"}', b'{"alg":"PS256"}', b'{"alg":"rs256"}',
        b'{"alg":"eddsa"}', b'{}', b'{"typ":"JWT"}', b'{"alg":null}', b'{"alg":["RS256"]}', b'{"alg":{"x":1}}',
    ],
)
def test_unsupported_algorithms_raise_jws_error(header):
    with pytest.raises(JwsError):
        Jws.parse(with_header(header))


MALFORMED = {
    "empty": "",
    "blank": "   ",
    "one part": "eyJhbGciOiJSUzI1NiJ9",
    "two parts": "eyJhbGciOiJSUzI1NiJ9.e30",
    "four parts": "eyJhbGciOiJSUzI1NiJ9.e30.AAAA.AAAA",
    "empty parts": "..",
    "header not json": with_header(b"not json"),
    "header a list": with_header(b'["RS256"]'),
    "header a string": with_header(b'"RS256"'),
    "header not utf-8": with_header(b"\xff\xfe\xfd"),
    "header bad base64": "e.e30.AAAA",
    "signature bad base64": "eyJhbGciOiJSUzI1NiJ9.e30.A",
    "payload bad base64": "eyJhbGciOiJSUzI1NiJ9.A.AAAA",
    "non-ascii header": "é.e30.AAAA",
    "non-ascii signature": "eyJhbGciOiJSUzI1NiJ9.e30.é",
    "non-ascii payload": "eyJhbGciOiJSUzI1NiJ9.é.AAAA",
    "json truncated": '{"payload":',
    "json no signatures": '{"payload":"e30"}',
    "json empty signatures": '{"payload":"e30","signatures":[]}',
    "json signatures not a list": '{"payload":"e30","signatures":"x"}',
    "json signatures an object": '{"payload":"e30","signatures":{"protected":"eyJhbGciOiJSUzI1NiJ9"}}',
    "json no protected": '{"payload":"e30","signatures":[{"signature":"AAAA"}]}',
    "json no payload": '{"signatures":[{"protected":"eyJhbGciOiJSUzI1NiJ9","signature":"AAAA"}]}',
    "json payload a number": '{"payload":1,"signatures":[{"protected":"eyJhbGciOiJSUzI1NiJ9","signature":"AAAA"}]}',
    "json protected a number": '{"payload":"e30","signatures":[{"protected":2,"signature":"AAAA"}]}',
    "json non-ascii payload": '{"payload":"é","signatures":[{"protected":"eyJhbGciOiJSUzI1NiJ9","signature":"AAAA"}]}',
    "json a list": "[1]",
    "json a list starting with a brace": '{"signatures":[[1]],"payload":"e30"}',
}


@pytest.mark.parametrize("text", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_input_raises_jws_error_only(text):
    with pytest.raises(JwsError):
        Jws.parse(text)


@pytest.mark.parametrize(
    "payload", [b"not json", b"[1,2]", b'"a string"', b"42", b"\xff\xfe", b'{"a":'], ids=str
)
def test_claims_of_a_non_object_payload_raise_jws_error(payload):
    parsed = Jws.parse(sign_compact(ED_A, payload))  # a well-formed JWS whose payload is not a claims object
    assert parsed.verify(ED_A.public_key())
    with pytest.raises(JwsError):
        parsed.claims()


def _ec_key():
    return ec.derive_private_key(123456789, ec.SECP256R1())


def test_unsupported_key_types_raise_jws_error():
    key = _ec_key()
    with pytest.raises(JwsError):
        algorithm_for(key)
    with pytest.raises(JwsError):
        sign_compact(key, PAYLOAD)
    with pytest.raises(JwsError):
        sign_bytes(key, PAYLOAD)
    with pytest.raises(JwsError):
        public_jwk(key.public_key())
    with pytest.raises(JwsError):
        thumbprint(key.public_key())


def test_unb64url_rejects_garbage_with_jws_error():
    assert unb64url("AQAB") == b"\x01\x00\x01"
    assert unb64url(b64url(b"\xfb\xff")) == b"\xfb\xff"
    for bad in ("A", "AAAAA", "é"):
        with pytest.raises(JwsError):
            unb64url(bad)


# --- JWK -------------------------------------------------------------------------------------------------


def test_ed25519_jwk_round_trip():
    raw = ED_A.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = public_jwk(ED_A)
    assert jwk == {"kty": "OKP", "crv": "Ed25519", "x": encode_part(raw)}
    assert public_jwk(ED_A.public_key()) == jwk
    back = key_from_jwk(jwk)
    assert isinstance(back, ed25519.Ed25519PublicKey)
    assert back.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
    assert public_jwk(rfc8037_key()) == {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}


def test_rsa_jwk_round_trip_and_handle_net_form():
    jwk = public_jwk(RSA_PREFIX)
    assert list(jwk) == ["kty", "n", "e"]  # Handle.Net's member order
    assert jwk == {"kty": "RSA", "n": PREFIX_JWK_N, "e": "AQAB"}  # as Handle.Net 9 wrote it for this key
    back = key_from_jwk(jwk)
    assert isinstance(back, rsa.RSAPublicKey)
    assert back.public_numbers() == RSA_PREFIX.public_key().public_numbers()


def test_rsa_jwk_drops_leading_zero_bytes():
    jwk = public_jwk(RSA_ROOT)
    n = unb64url(jwk["n"])
    assert n[0] != 0
    assert int.from_bytes(n, "big") == RSA_ROOT.public_key().public_numbers().n


def test_jwk_with_lower_case_rsa_kty_and_extra_members_is_read():
    jwk = dict(public_jwk(RSA_PREFIX), kid="x", use="sig")
    jwk["kty"] = "rsa"
    assert same_key(key_from_jwk(jwk), RSA_PREFIX.public_key())


@pytest.mark.parametrize(
    "jwk",
    [
        None, [], "RSA", {}, {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, {"kty": "OKP", "crv": "X25519", "x": "AA"},
        {"kty": "OKP", "crv": "Ed448", "x": "AA"}, {"kty": "OKP", "crv": "Ed25519"}, {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "é"}, {"kty": "RSA", "e": "AQAB"}, {"kty": "RSA", "n": "AA", "e": "AQAB"},
        {"kty": "RSA", "n": PREFIX_JWK_N, "e": "AA"}, {"kty": "RSA", "n": "é", "e": "AQAB"}, {"kty": "DSA", "y": "AA"},
        {"kty": None},
    ],
    ids=repr,
)
def test_bad_jwks_raise_jws_error(jwk):
    with pytest.raises(JwsError):
        key_from_jwk(jwk)


# --- thumbprints and same_key --------------------------------------------------------------------------


def test_thumbprint_of_the_rfc7638_example_key():
    key = key_from_jwk(RFC7638_JWK)
    assert thumbprint(key) == RFC7638_THUMBPRINT


def test_thumbprint_of_the_rfc8037_example_key():
    assert thumbprint(rfc8037_key()) == RFC8037_THUMBPRINT
    assert thumbprint(rfc8037_key().public_key()) == RFC8037_THUMBPRINT


@pytest.mark.parametrize("key", [ED_A, ED_B, RSA_ROOT, RSA_PREFIX], ids=["ed_a", "ed_b", "rsa_root", "rsa_prefix"])
def test_thumbprint_agrees_with_joserfc(key):
    jwk = public_jwk(key)
    imported = OKPKey.import_key(jwk) if jwk["kty"] == "OKP" else RSAKey.import_key(jwk)
    assert thumbprint(key) == imported.thumbprint()
    assert thumbprint(key) == thumbprint(key.public_key())
    assert len(thumbprint(key)) == 43


def test_thumbprints_differ_between_keys():
    prints = {thumbprint(k) for k in (ED_A, ED_B, RSA_ROOT, RSA_PREFIX)}
    assert len(prints) == 4


def test_same_key():
    assert same_key(ED_A.public_key(), key_from_jwk(public_jwk(ED_A)))
    assert same_key(RSA_ROOT.public_key(), key_from_jwk(public_jwk(RSA_ROOT)))
    assert not same_key(ED_A.public_key(), ED_B.public_key())
    assert not same_key(RSA_ROOT.public_key(), RSA_PREFIX.public_key())
    assert not same_key(ED_A.public_key(), RSA_ROOT.public_key())
