"""Issuing HS_SIGNATURE and HS_CERT values in Handle.Net's format. Pure: cryptography only, time passed in.

An HS_SIGNATURE is a compact JWS whose payload lists, for every public-readable value except
HS_SIGNATURE itself, the SHA-256 of the value's Handle encoding without index and timestamp (standard
base64, padded), plus ``iss`` (``index:handle`` of the signing key), ``sub`` (the handle), ``iat``,
``nbf``, ``exp``. An HS_CERT is a JWS by an issuer over a subject's public key and permissions.
Payload members are written in Handle.Net's order, so RS256 output is byte-identical to its signer's.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import orjson

from .encoding import digest_bytes
from .jws import Jws, JwsError, PrivateKey, PublicKey, public_jwk, sign_compact, unb64url
from .model import Handle, HandleValue, Record, ValueRef, fold, free_index
from .values import CERT, SIGNATURE

SIGNATURE_INDEX = 400
DIGEST_ALG = "SHA-256"
_HASHES = {"SHA-256": hashlib.sha256, "SHA256": hashlib.sha256, "SHA-1": hashlib.sha1, "SHA1": hashlib.sha1}

EVERYTHING = "everything"
THIS_HANDLE = "thisHandle"
DERIVED_PREFIXES = "derivedPrefixes"
HANDLES_UNDER_THIS_PREFIX = "handlesUnderThisPrefix"
PERMS = (EVERYTHING, THIS_HANDLE, DERIVED_PREFIXES, HANDLES_UNDER_THIS_PREFIX)


def value_digest(value: HandleValue, alg: str = DIGEST_ALG) -> str:
    """Base64 (standard, padded) of the hash of the value's encoding without index and timestamp."""
    try:
        algorithm = _HASHES[alg.upper()]
    except KeyError:
        raise JwsError(f"digest algorithm {alg!r} is not supported") from None
    return base64.b64encode(algorithm(digest_bytes(value)).digest()).decode("ascii")


def needs_signature(value: HandleValue, handle: Handle) -> bool:
    """Values a signature must cover: public-readable ones except HS_SIGNATURE (and 10320/sig.* on 0.NA/0.NA)."""
    if value.type_key == SIGNATURE or not value.public_read:
        return False
    if handle.key == "0.NA/0.NA" and value.type_key in ("10320/SIG.SIG", "10320/SIG.DIGEST"):
        return False
    return True


@dataclass(frozen=True)
class Permission:
    perm: str
    handle: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"perm": self.perm} if self.handle is None else {"handle": self.handle, "perm": self.perm}

    @classmethod
    def from_json(cls, data: Any) -> "Permission":
        if not isinstance(data, dict) or not isinstance(data.get("perm"), str):
            raise JwsError(f"a permission must be {{handle, perm}}, not {data!r}")
        handle = data.get("handle")
        return cls(data["perm"], handle if isinstance(handle, str) else None)


def _times(iat: int, nbf: int | None, exp: int | None) -> dict[str, int]:
    out: dict[str, int] = {}
    if exp is not None:
        out["exp"] = exp
    if nbf is not None:
        out["nbf"] = nbf
    out["iat"] = iat
    return out


def signature_payload(
    handle: str, values: Iterable[HandleValue], issuer: ValueRef, *, iat: int, nbf: int | None, exp: int | None,
    chain: Sequence[str] | None = None,
) -> bytes:
    claims: dict[str, Any] = {
        "digests": {"alg": DIGEST_ALG, "digests": [{"index": v.index, "digest": value_digest(v)} for v in values]}
    }
    if chain:
        claims["chain"] = list(chain)
    claims.update(iss=str(issuer), sub=handle, **_times(iat, nbf, exp))
    return orjson.dumps(claims)


def certificate_payload(
    issuer: ValueRef, subject: ValueRef, subject_key: PublicKey, perms: Sequence[Permission], *,
    iat: int, nbf: int | None, exp: int | None, chain: Sequence[str] | None = None,
) -> bytes:
    claims: dict[str, Any] = {"perms": [p.to_json() for p in perms]}
    if chain:
        claims["chain"] = list(chain)
    claims.update(publicKey=public_jwk(subject_key), iss=str(issuer), sub=str(subject), **_times(iat, nbf, exp))
    return orjson.dumps(claims)


def issue_certificate(
    issuer_key: PrivateKey, issuer: ValueRef, subject: ValueRef, subject_key: PublicKey, perms: Sequence[Permission], *,
    iat: int, nbf: int | None, exp: int | None,
) -> str:
    """A compact JWS certifying ``subject_key`` as ``subject`` with ``perms``; self-issued when issuer == subject."""
    for p in perms:
        if p.perm not in PERMS:
            raise JwsError(f"permission {p.perm!r} is not one of {', '.join(PERMS)}")
    return sign_compact(issuer_key, certificate_payload(issuer, subject, subject_key, perms, iat=iat, nbf=nbf, exp=exp))


def signature_expiry(values: Iterable[HandleValue]) -> int | None:
    """The earliest ``exp`` of the record's HS_SIGNATURE values; None when it has none readable."""
    expiries = []
    for value in values:
        if value.type_key != SIGNATURE:
            continue
        parts = value.data.split(b".")
        try:
            exp = orjson.loads(unb64url(parts[1].decode("ascii"))).get("exp") if len(parts) == 3 else None
        except (JwsError, UnicodeDecodeError, orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(exp, int):
            expiries.append(exp)
    return min(expiries) if expiries else None


def certificates(values: Iterable[HandleValue]) -> list[tuple[HandleValue, Jws, dict[str, Any]]]:
    """The readable HS_CERT values with their parsed JWS and claims."""
    found = []
    for value in values:
        if value.type_key != CERT:
            continue
        try:
            jws = Jws.parse(value.data.decode("utf-8"))
            found.append((value, jws, jws.claims()))
        except (JwsError, UnicodeDecodeError):
            continue
    return found


class RecordSigner:
    """Seals records: replaces their HS_SIGNATURE values with one signed by this node's active key.

    ``identity_for`` says which ``index:handle`` signs a handle (the key's HS_PUBKEY on the prefix
    record that covers it), or None when this node does not sign it.
    """

    def __init__(
        self,
        key: PrivateKey,
        identity_for: Callable[[Handle], ValueRef | None],
        *,
        lifetime: int,
        skew: int = 600,
    ) -> None:
        self.key = key
        self.identity_for = identity_for
        self.lifetime = lifetime
        self.skew = skew

    def seal(self, record: Record, now: int) -> Record:
        issuer = self.identity_for(record.handle)
        if issuer is None:
            return record
        kept = [v for v in record.values if v.type_key != SIGNATURE]
        old = [v.index for v in record.values if v.type_key == SIGNATURE]
        index = min(old) if old else free_index(kept, SIGNATURE_INDEX)
        signed = [v for v in kept if needs_signature(v, record.handle)]
        payload = signature_payload(record.handle.text, signed, issuer, iat=now, nbf=now - self.skew, exp=now + self.lifetime)
        signature = HandleValue(index, SIGNATURE, sign_compact(self.key, payload).encode("ascii"), timestamp=now)
        return record.with_values([*kept, signature])


def covers(perm: Permission, handle: str) -> bool:
    """Whether a certificate permission authorises signing ``handle`` (Handle.Net's HandleVerifier rules)."""
    if perm.perm == EVERYTHING:
        return True
    if perm.handle is None:
        return False
    target, granted = fold(handle), fold(perm.handle)
    if perm.perm == THIS_HANDLE:
        return target == granted or _under_prefix(target, granted)
    if perm.perm == HANDLES_UNDER_THIS_PREFIX:
        return _under_prefix(target, granted)
    if perm.perm == DERIVED_PREFIXES:
        return _derived_from(target, granted) or _derived_from(_prefix_record(target), granted)
    return False


def _under_prefix(handle: str, prefix_record: str) -> bool:
    return prefix_record.startswith("0.NA/") and handle.startswith(prefix_record[5:] + "/")


def _derived_from(handle: str, ancestor: str) -> bool:
    return handle.startswith("0.NA/") and handle.startswith(ancestor + ".")


def _prefix_record(handle: str) -> str:
    return "0.NA/" + handle.partition("/")[0]
