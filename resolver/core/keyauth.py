"""Key-based authentication (handle-http-api.md §6.2–§6.3): answers to Handle's challenge, and TLS client
certificates, checked against the identity's HS_PUBKEY or HS_SECKEY values. Transport-free.

A challenge answer signs ``nonce ‖ cnonce``: with an HS_PUBKEY's private key (RSA PKCS#1 v1.5 or DSA
with the hash ``alg`` names; Ed25519 signs the bytes themselves), or with a secret key in one of
Handle's MAC forms. A secret key kept hashed (``seckeys``) answers only ``PBKDF2-HMAC-SHA1`` with its own
salt and iteration count, since nothing else can be checked without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from registry.errors import IdresError
from registry.jws import unb64url
from registry.model import HandleValue, Record, ValueRef
from registry.pubkeys import pubkey_to_jwk
from registry.values import PUBKEY, SECKEY

from . import seckeys

_HASHES = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512,
           "MD5": hashes.MD5}
_DIGESTS = {"SHA1": "sha1", "SHA256": "sha256", "MD5": "md5"}
UID = x509.ObjectIdentifier("0.9.2342.19200300.100.1.1")


def _norm(alg: str) -> str:
    """``SHA-256``, ``sha256``, ``HMAC_SHA256`` → ``SHA256``, ``HMACSHA256``: case and punctuation ignored."""
    return "".join(ch for ch in alg.upper() if ch.isalnum())


@dataclass(frozen=True)
class Answer:
    """An answer to the challenge ``nonce``: the fields of handle-http-api.md §6.3 step 2, decoded."""

    identity: ValueRef
    kind: str  # HS_PUBKEY or HS_SECKEY
    alg: str
    cnonce: bytes
    signature: bytes
    salt: bytes | None = None
    iterations: int | None = None
    length: int | None = None


def public_key_of(value: HandleValue):
    """The ``cryptography`` public key in an HS_PUBKEY value; None if it holds none idres can use."""
    try:
        jwk = pubkey_to_jwk(value.data)
    except (IdresError, ValueError):
        return None
    if jwk["kty"] == "OKP":
        return ed25519.Ed25519PublicKey.from_public_bytes(unb64url(jwk["x"]))
    if jwk["kty"] == "RSA":
        n, e = (int.from_bytes(unb64url(jwk[k]), "big") for k in ("n", "e"))
        return rsa.RSAPublicNumbers(e, n).public_key()
    if jwk["kty"] == "DSA":
        p, q, g, y = (int.from_bytes(unb64url(jwk[k]), "big") for k in ("p", "q", "g", "y"))
        return dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g)).public_key()
    return None


def _signed_by(key, alg: str, message: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
        algorithm = _HASHES.get(_norm(alg).removeprefix("RSA").removeprefix("DSA"))
        if algorithm is None:
            return False
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), algorithm())
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, message, algorithm())
        else:
            return False
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def _mac_matches(stored: bytes, answer: Answer, message: bytes) -> bool:
    alg = _norm(answer.alg)
    hashed = seckeys.parse(stored)
    if alg in ("PBKDF2HMACSHA1", "PBKDF2"):
        if answer.salt is None or answer.iterations is None or (answer.length or 160) != 160:
            return False
        if hashed is not None:
            if (answer.salt, answer.iterations) != (hashed.salt, hashed.iterations):
                return False
            key = hashed.key
        else:
            key = seckeys.derive(stored, answer.salt, answer.iterations)
        return hmac.compare_digest(hmac.new(key, message, "sha1").digest(), answer.signature)
    if hashed is not None:
        return False
    if alg in ("HMACSHA1", "HMACSHA256"):
        expected = hmac.new(stored, message, "sha1" if alg == "HMACSHA1" else "sha256").digest()
    elif alg in _DIGESTS:
        expected = hashlib.new(_DIGESTS[alg], stored + message + stored).digest()
    else:
        return False
    return hmac.compare_digest(expected, answer.signature)


def verify_answer(record: Record | None, answer: Answer, nonce: bytes) -> int | None:
    """The index of the value of ``record`` that proves ``answer`` to ``nonce``; None if none does."""
    if record is None:
        return None
    wanted = PUBKEY if answer.kind.upper() == PUBKEY else SECKEY
    message = nonce + answer.cnonce
    for value in record.values:
        if value.type_key != wanted or answer.identity.index not in (0, value.index):
            continue
        if wanted == PUBKEY:
            key = public_key_of(value)
            if key is not None and _signed_by(key, answer.alg, message, answer.signature):
                return value.index
        elif _mac_matches(value.data, answer, message):
            return value.index
    return None


def certificate_identity(der: bytes) -> tuple[ValueRef, object] | None:
    """The identity (subject UID, else CN, of the form index:handle) and public key of a client
    certificate; None if the certificate names no identity."""
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(UID) or cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        identity = ValueRef.parse(str(names[0].value)) if names else None
    except (ValueError, IdresError):
        return None
    return (identity, cert.public_key()) if identity is not None else None


def certificate_index(record: Record | None, identity: ValueRef, public_key) -> int | None:
    """The index of the HS_PUBKEY of ``record`` equal to the certificate's key (at the identity's index,
    or any with index 0); None when none is."""
    if record is None:
        return None
    wanted = _spki(public_key)
    for value in record.of_type(PUBKEY):
        if identity.index in (0, value.index):
            key = public_key_of(value)
            if key is not None and _spki(key) == wanted:
                return value.index
    return None


def _spki(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
