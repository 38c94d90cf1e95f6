"""HS_PUBKEY: public keys in the Handle binary encoding, to and from JWK and cryptography keys. Pure.

RSA and DSA keys use Handle.Net's encoding (handle-wire.md §1). Handle.Net writes an ``int4 0`` after
the RSA modulus (289 bytes for RSA-2048, where the fields alone take 285), and its digests cover those
four bytes: idres writes them too, and reads RSA keys with or without them. Ed25519 keys use idres's
own ``Ed25519_PUB_KEY`` encoding, which Handle.Net does not define.
"""

from __future__ import annotations

import re
from typing import Any, Union

from cryptography.hazmat.primitives.asymmetric import dsa, ed25519, rsa

from .encoding import DecodeError, Reader, Writer
from .errors import InvalidValue
from .jws import b64url, unb64url

RSA_PUB = "RSA_PUB_KEY"
DSA_PUB = "DSA_PUB_KEY"
ED25519_PUB = "Ed25519_PUB_KEY"
RSA_TRAILER = bytes(4)  # the int4 0 Handle.Net writes after the RSA modulus
MIN_RSA_BITS = 1024  # the smallest modulus ``cryptography`` generates
_B64URL = re.compile(r"[A-Za-z0-9_-]*")

AnyPublicKey = Union[rsa.RSAPublicKey, dsa.DSAPublicKey, ed25519.Ed25519PublicKey]


def _key_type(jwk: Any) -> str:
    if not isinstance(jwk, dict) or "kty" not in jwk:
        raise InvalidValue("key value needs a 'kty' member")
    if not isinstance(jwk["kty"], str):
        raise InvalidValue(f"key value member 'kty' has the wrong type: {jwk['kty']!r}")
    return jwk["kty"]


def _key_member(text: Any, what: str) -> bytes:
    """A JWK member: base64url without padding, strictly (no characters outside the alphabet)."""
    if not isinstance(text, str):
        raise InvalidValue(f"key member {what!r} must be a base64url string")
    if not text or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidValue(f"key member {what!r} is not base64url: {text[:40]!r}")
    return unb64url(text)


def _unsigned(b: bytes) -> bytes:
    """Big integer bytes without leading zeros (JWK form)."""
    stripped = b.lstrip(b"\x00")
    return stripped or b"\x00"


def _twos(b: bytes) -> bytes:
    """Big integer bytes in Java's two's-complement form (a leading zero when the high bit is set)."""
    b = _unsigned(b)
    return b"\x00" + b if b[0] & 0x80 else b


def _rsa_end(r: Reader) -> None:
    """The end of an RSA key: nothing, or the ``int4 0`` that Handle.Net writes after the modulus."""
    if r.buf[r.pos:] == RSA_TRAILER:
        r.raw(len(RSA_TRAILER))
    r.end()


def pubkey_to_jwk(data: bytes) -> dict[str, str]:
    r = Reader(data)
    kind = r.text()
    r.int2()  # reserved flags
    if kind == RSA_PUB:
        e, n = r.bytes(), r.bytes()
        _rsa_end(r)
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
    """The Handle encoding of a JWK public key; RSA keys in Handle.Net's layout (with the ``int4 0``)."""
    kty = _key_type(jwk)
    w = Writer()
    if kty == "RSA":
        w.text(RSA_PUB).int2(0).bytes(_twos(_key_member(jwk.get("e"), "e"))).bytes(_twos(_key_member(jwk.get("n"), "n")))
        w.raw(RSA_TRAILER)
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


def canonical_pubkey(data: bytes) -> bytes | None:
    """The key's encoding as idres writes it (Handle.Net's layout), whichever layout ``data`` uses;
    None when ``data`` is no key. Two encodings of one key have the same canonical form."""
    try:
        return jwk_to_pubkey(pubkey_to_jwk(data))
    except InvalidValue:
        return None


def _number(jwk: dict[str, str], member: str) -> int:
    return int.from_bytes(unb64url(jwk[member]), "big")


def load_pubkey(data: bytes) -> AnyPublicKey:
    """The key that HS_PUBKEY data holds, checked by ``cryptography``: InvalidValue when it is not a usable
    key (an RSA modulus that is even or under 1024 bits, an even exponent, DSA parameters of no standard size)."""
    jwk = pubkey_to_jwk(data)
    try:
        if jwk["kty"] == "RSA":
            n = _number(jwk, "n")
            if n.bit_length() < MIN_RSA_BITS or not n & 1:
                raise ValueError(f"the modulus must be odd and at least {MIN_RSA_BITS} bits (it has {n.bit_length()})")
            return rsa.RSAPublicNumbers(_number(jwk, "e"), n).public_key()
        if jwk["kty"] == "DSA":
            params = dsa.DSAParameterNumbers(_number(jwk, "p"), _number(jwk, "q"), _number(jwk, "g"))
            return dsa.DSAPublicNumbers(_number(jwk, "y"), params).public_key()
        return ed25519.Ed25519PublicKey.from_public_bytes(unb64url(jwk["x"]))
    except ValueError as exc:
        raise InvalidValue(f"the {jwk['kty']} key is not a valid public key: {exc}") from None
