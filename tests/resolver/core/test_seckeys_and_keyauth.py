"""Hashed secret keys (Handle.Net's PBKDF2 encoding) and answers to Handle's challenge. Pure."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from registry.model import Handle, HandleValue, Record, ValueRef
from registry.pubkeys import jwk_to_pubkey
from registry.jws import b64url
from resolver.core import seckeys
from resolver.core.keyauth import Answer, verify_answer

NONCE, CNONCE = b"n" * 16, b"c" * 16


def test_derivation_is_pbkdf2_hmac_sha1_as_rfc_6070_gives_it():
    assert seckeys.derive(b"password", b"salt", 1).hex() == "0c60c80f961f0e71f3a9b524af6012062fe037a6"
    assert seckeys.derive(b"password", b"salt", 4096).hex() == "4b007901b765489abead49d926f721d065a429c1"


def test_a_hashed_secret_round_trips_and_matches_only_its_secret():
    stored = seckeys.SecretHasher(iterations=1000).hash(b"s3cret")
    assert stored[0] == 0x22 and b"s3cret" not in stored
    parsed = seckeys.parse(stored)
    assert parsed is not None and parsed.iterations == 1000 and len(parsed.salt) == 16 and parsed.encode() == stored
    assert seckeys.matches(stored, b"s3cret") and not seckeys.matches(stored, b"s3cret!")
    assert seckeys.parse(b"plain secret") is None and seckeys.matches(b"plain secret", b"plain secret")
    assert seckeys.parse(b'"quoted but not a hash"') is None


def test_writing_the_same_secret_again_keeps_its_hash():
    hasher = seckeys.SecretHasher(iterations=1000)
    first = hasher.seal(None, [HandleValue(300, "HS_SECKEY", b"pw"), HandleValue(1, "URL", b"x")])
    record = Record(Handle.parse("88.101/U"), tuple(first))
    again = hasher.seal(record, [HandleValue(300, "HS_SECKEY", b"pw")])
    changed = hasher.seal(record, [HandleValue(300, "HS_SECKEY", b"other")])
    assert again[0].data == first[0].data and changed[0].data != first[0].data and seckeys.matches(changed[0].data, b"other")


def secret_answer(alg: str, signature: bytes, **extra) -> Answer:
    return Answer(ValueRef(300, "88.101/U"), "HS_SECKEY", alg, CNONCE, signature, **extra)


def test_secret_key_answers_in_each_of_handles_forms():
    clear = Record(Handle.parse("88.101/U"), (HandleValue(300, "HS_SECKEY", b"pw"),))
    message = NONCE + CNONCE
    assert verify_answer(clear, secret_answer("HMAC-SHA256", hmac.new(b"pw", message, "sha256").digest()), NONCE) == 300
    assert verify_answer(clear, secret_answer("SHA1", hashlib.sha1(b"pw" + message + b"pw").digest()), NONCE) == 300
    assert verify_answer(clear, secret_answer("SHA1", hashlib.sha1(b"no" + message + b"no").digest()), NONCE) is None
    hashed_value = seckeys.SecretHasher(iterations=1000).hash(b"pw")
    hashed = Record(Handle.parse("88.101/U"), (HandleValue(300, "HS_SECKEY", hashed_value),))
    salt = seckeys.parse(hashed_value).salt
    key = seckeys.derive(b"pw", salt, 1000)
    good = secret_answer("PBKDF2-HMAC-SHA1", hmac.new(key, message, "sha1").digest(), salt=salt, iterations=1000, length=160)
    assert verify_answer(hashed, good, NONCE) == 300
    assert verify_answer(clear, good, NONCE) == 300  # a clear key answers the same
    other_salt = secret_answer("PBKDF2-HMAC-SHA1", good.signature, salt=b"x" * 16, iterations=1000, length=160)
    assert verify_answer(hashed, other_salt, NONCE) is None
    assert verify_answer(hashed, secret_answer("HMAC-SHA256", hmac.new(b"pw", message, "sha256").digest()), NONCE) is None


@pytest.mark.parametrize("alg, digest", [("SHA256", hashes.SHA256), ("SHA1", hashes.SHA1)])
def test_rsa_answers_name_their_hash(alg, digest):
    private = rsa.generate_private_key(65537, 2048)
    n = private.public_key().public_numbers().n
    jwk = {"kty": "RSA", "n": b64url(n.to_bytes((n.bit_length() + 7) // 8, "big")), "e": b64url((65537).to_bytes(3, "big"))}
    record = Record(Handle.parse("88.101/D"), (HandleValue(301, "HS_PUBKEY", jwk_to_pubkey(jwk)),))
    signature = private.sign(NONCE + CNONCE, padding.PKCS1v15(), digest())
    answer = Answer(ValueRef(0, "88.101/D"), "HS_PUBKEY", alg, CNONCE, signature)
    assert verify_answer(record, answer, NONCE) == 301  # index 0: any HS_PUBKEY
    assert verify_answer(record, answer, b"m" * 16) is None
    assert verify_answer(record, Answer(ValueRef(302, "88.101/D"), "HS_PUBKEY", alg, CNONCE, signature), NONCE) is None
