"""HS_PUBKEY: public keys in the Handle binary encoding, to and from JWK. Pure."""

from __future__ import annotations

from typing import Any

from .encoding import DecodeError, Reader, Writer
from .errors import InvalidValue
from .jws import JwsError, b64url, unb64url


def _key_type(jwk: Any) -> str:
    if not isinstance(jwk, dict) or "kty" not in jwk:
        raise InvalidValue("key value needs a 'kty' member")
    if not isinstance(jwk["kty"], str):
        raise InvalidValue(f"key value member 'kty' has the wrong type: {jwk['kty']!r}")
    return jwk["kty"]


RSA_PUB = "RSA_PUB_KEY"
DSA_PUB = "DSA_PUB_KEY"
ED25519_PUB = "Ed25519_PUB_KEY"


def _key_member(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidValue(f"key member {what!r} must be a base64url string")
    try:
        return unb64url(text)
    except JwsError:
        raise InvalidValue(f"key member {what!r} is not base64url") from None


def _unsigned(b: bytes) -> bytes:
    """Big integer bytes without leading zeros (JWK form)."""
    stripped = b.lstrip(b"\x00")
    return stripped or b"\x00"


def _twos(b: bytes) -> bytes:
    """Big integer bytes in Java's two's-complement form (a leading zero when the high bit is set)."""
    b = _unsigned(b)
    return b"\x00" + b if b[0] & 0x80 else b


def pubkey_to_jwk(data: bytes) -> dict[str, str]:
    r = Reader(data)
    kind = r.text()
    r.int2()  # reserved flags
    if kind == RSA_PUB:
        e, n = r.bytes(), r.bytes()
        r.end()
        return {"kty": "RSA", "n": b64url(_unsigned(n)), "e": b64url(_unsigned(e))}
    if kind == DSA_PUB:
        q, p, g, y = r.bytes(), r.bytes(), r.bytes(), r.bytes()
        r.end()
        return {"kty": "DSA", "y": b64url(_unsigned(y)), "p": b64url(_unsigned(p)), "q": b64url(_unsigned(q)), "g": b64url(_unsigned(g))}
    if kind == ED25519_PUB:
        x = r.bytes()
        r.end()
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(x)}
    raise DecodeError(f"unknown public key encoding {kind!r}")


def jwk_to_pubkey(jwk: Any) -> bytes:
    kty = _key_type(jwk)
    w = Writer()
    if kty == "RSA":
        w.text(RSA_PUB).int2(0).bytes(_twos(_key_member(jwk.get("e"), "e"))).bytes(_twos(_key_member(jwk.get("n"), "n")))
    elif kty == "DSA":
        w.text(DSA_PUB).int2(0)
        for member in ("q", "p", "g", "y"):
            w.bytes(_twos(_key_member(jwk.get(member), member)))
    elif kty == "OKP" and jwk.get("crv") == "Ed25519":
        x = _key_member(jwk.get("x"), "x")
        if len(x) != 32:
            raise InvalidValue("an Ed25519 key has 32 bytes")
        w.text(ED25519_PUB).int2(0).bytes(x)
    else:
        raise InvalidValue(f"key type {kty!r} is not supported (RSA, DSA, OKP/Ed25519)")
    return w.getvalue()
