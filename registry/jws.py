"""Compact JWS (RFC 7515) as Handle.Net stores it, with EdDSA (RFC 8037) and RS256; JWK keys. Pure.

Handle.Net writes ``b64url(header) "." b64url(payload) "." b64url(signature)`` without padding and
a header of exactly ``{"alg":"RS256"}``; it also reads the JSON serialization (first signature only).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Union

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from .errors import IdresError

PrivateKey = Union[ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey]
PublicKey = Union[ed25519.Ed25519PublicKey, rsa.RSAPublicKey]

EDDSA = "EdDSA"
RS256 = "RS256"
ALGORITHMS = (EDDSA, RS256)


class JwsError(IdresError):
    """A JWS or JWK that cannot be parsed, or an unsupported algorithm."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JwsError("not base64url") from None


def algorithm_for(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return EDDSA
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return RS256
    raise JwsError(f"unsupported key type {type(key).__name__}: use Ed25519 or RSA")


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise JwsError(f"unsupported key type {type(key).__name__}")


def verify_bytes(key: PublicKey, alg: str, signature: bytes, data: bytes) -> bool:
    try:
        if alg == EDDSA and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
            return True
        if alg == RS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False


@dataclass(frozen=True)
class Jws:
    """A parsed compact JWS: the signing input, the header's algorithm, the payload and the signature."""

    alg: str
    signing_input: bytes
    payload: bytes
    signature: bytes

    @classmethod
    def parse(cls, text: str) -> "Jws":
        text = text.strip()
        if not text.isascii():
            raise JwsError("a JWS is ASCII text")
        if text.startswith("{"):
            return cls._parse_json(text)
        parts = text.split(".")
        if len(parts) != 3:
            raise JwsError("a compact JWS has three parts separated by '.'")
        return cls._build(parts[0], parts[1], parts[2])

    @classmethod
    def _parse_json(cls, text: str) -> "Jws":
        try:
            data = orjson.loads(text)
            first = data["signatures"][0]
            return cls._build(first["protected"], data["payload"], first["signature"])
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            raise JwsError("a JSON JWS needs payload and signatures[0].protected/signature") from None

    @classmethod
    def _build(cls, header: str, payload: str, signature: str) -> "Jws":
        try:
            alg = orjson.loads(unb64url(header)).get("alg")
        except (orjson.JSONDecodeError, AttributeError):
            raise JwsError("the JWS header is not a JSON object") from None
        if alg not in ALGORITHMS:
            raise JwsError(f"JWS algorithm {alg!r} is not supported ({', '.join(ALGORITHMS)})")
        return cls(alg, f"{header}.{payload}".encode("ascii"), unb64url(payload), unb64url(signature))

    def claims(self) -> dict[str, Any]:
        try:
            claims = orjson.loads(self.payload)
        except orjson.JSONDecodeError:
            raise JwsError("the JWS payload is not JSON") from None
        if not isinstance(claims, dict):
            raise JwsError("the JWS payload is not a JSON object")
        return claims

    def verify(self, key: PublicKey) -> bool:
        return verify_bytes(key, self.alg, self.signature, self.signing_input)


_B64URL_PART = re.compile(r"[A-Za-z0-9_-]+")


def _json_object(part: str, what: str) -> dict[str, Any]:
    if not _B64URL_PART.fullmatch(part) or len(part) % 4 == 1:
        raise JwsError(f"the JWS {what} is not base64url")
    try:
        value = orjson.loads(unb64url(part))
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise JwsError(f"the JWS {what} is not a JSON object")
    return value


def jws_form(text: str) -> tuple[str, dict[str, Any]]:
    """The algorithm and claims of a JWS, checking its form only: any ``alg`` is accepted (a node may keep
    certificates it cannot verify, SM2 ones say), nothing is verified."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
            first = data["signatures"][0]
            header, payload, signature = first["protected"], data["payload"], first["signature"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            raise JwsError("a JSON JWS needs payload and signatures[0].protected/signature") from None
        parts = [header, payload, signature]
    else:
        parts = text.split(".")
    if len(parts) != 3 or not all(isinstance(p, str) for p in parts):
        raise JwsError("a compact JWS has three parts separated by '.'")
    alg = _json_object(parts[0], "header").get("alg")
    if not isinstance(alg, str) or not alg:
        raise JwsError("the JWS header names no algorithm ('alg')")
    if not _B64URL_PART.fullmatch(parts[2]):
        raise JwsError("the JWS signature is not base64url")
    return alg, _json_object(parts[1], "payload")


def sign_compact(key: PrivateKey, payload: bytes) -> str:
    header = b64url(orjson.dumps({"alg": algorithm_for(key)}))
    body = b64url(payload)
    signing_input = f"{header}.{body}".encode("ascii")
    return f"{header}.{body}.{b64url(sign_bytes(key, signing_input))}"


# --- JWK -----------------------------------------------------------------------------------------


def _int_b64(n: int) -> str:
    return b64url(n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big"))


def public_jwk(key: PublicKey | PrivateKey) -> dict[str, str]:
    """The public JWK: ``{"kty":"OKP","crv":"Ed25519","x"}`` or ``{"kty":"RSA","n","e"}`` (Handle.Net's order)."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)):
        key = key.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
    raise JwsError(f"unsupported key type {type(key).__name__}")


def key_from_jwk(jwk: Any) -> PublicKey:
    if not isinstance(jwk, dict):
        raise JwsError("a JWK must be a JSON object")
    kty = str(jwk.get("kty", "")).upper()
    try:
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(unb64url(str(jwk["x"])))
        if kty == "RSA":
            n = int.from_bytes(unb64url(str(jwk["n"])), "big")
            e = int.from_bytes(unb64url(str(jwk["e"])), "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
    except (KeyError, ValueError) as exc:
        raise JwsError(f"invalid {kty} JWK: {exc}") from None
    raise JwsError(f"JWK type {jwk.get('kty')!r} is not supported (OKP/Ed25519, RSA)")


def load_public_key(data: bytes) -> tuple[PublicKey, int | None]:
    """A public key from PEM, a JWK, or ``{"index": …, "publicKey": JWK}`` (``idres keys export``);
    with the HS_PUBKEY index when the document gives one."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text)
        except ValueError as exc:
            raise JwsError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, (ed25519.Ed25519PublicKey, rsa.RSAPublicKey)):
            raise JwsError(f"unsupported key type {type(key).__name__}: use Ed25519 or RSA")
        return key, None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise JwsError("the key is neither PEM nor JSON (a JWK or `idres keys export` output)") from None
    if isinstance(doc, dict) and "publicKey" in doc:
        index = doc.get("index")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
            raise JwsError(f"the key's index {index!r} is not a number")
        return key_from_jwk(doc["publicKey"]), index
    return key_from_jwk(doc), None


def thumbprint(key: PublicKey | PrivateKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a stable key id."""
    jwk = public_jwk(key)
    required = {"OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = orjson.dumps({k: jwk[k] for k in required}, option=orjson.OPT_SORT_KEYS)
    return b64url(hashlib.sha256(canonical).digest())


def same_key(a: PublicKey, b: PublicKey) -> bool:
    return public_jwk(a) == public_jwk(b)
