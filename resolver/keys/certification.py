"""Certificates between nodes: a parent certifies a child prefix's key; a root certifies itself.

A certificate is an HS_CERT value on the record ``0.NA/<child prefix>`` whose ``sub`` is the child's
signing identity (``<key index>:0.NA/<child prefix>``) and whose ``iss`` is the parent's. The parent
keeps it in its own copy of that record; the child installs the same JWS in its copy
(``idres keys install-cert``), so that a verifier finds it whichever node it asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from registry.errors import ConfigurationError, HandleAlreadyExists, IdresError, PrefixNotHomed
from registry.jws import Jws, JwsError, PublicKey, key_from_jwk, load_public_key, public_jwk, same_key
from registry.model import Handle, HandleValue, Record, ValueRef, fold, free_index, prefix_record_handle
from registry.signing import DERIVED_PREFIXES, EVERYTHING, THIS_HANDLE, Permission, certificates, issue_certificate
from registry.pg.store import Store
from registry.values import CERT, PUBKEY, jwk_to_pubkey

from ..core.authority import AuthoritySnapshot
from ..core.retry import retry_on_conflict
from .keyring import Keyring

CERT_INDEX = 400
NOT_BEFORE_SKEW = 600


@dataclass(frozen=True)
class SubjectKey:
    """A key to certify: its public key and the HS_PUBKEY index it is published at."""

    key: PublicKey
    index: int


def child_permissions(prefix: str) -> list[Permission]:
    """The default grant: the child's prefix record and handles, and prefixes derived from it."""
    record = f"0.NA/{prefix}"
    return [Permission(THIS_HANDLE, record), Permission(DERIVED_PREFIXES, record)]


def parse_subject_key(data: bytes, default_index: int) -> SubjectKey:
    """A public key from PEM, a JWK, or ``idres keys export`` JSON (``{"index": …, "publicKey": JWK}``)."""
    try:
        key, index = load_public_key(data)
    except JwsError as exc:
        raise ConfigurationError(exc.message) from None
    return SubjectKey(key, default_index if index is None else index)


def keys_from_values(values: Sequence[dict[str, Any]]) -> list[SubjectKey]:
    """The HS_PUBKEY values of a JSON answer (``GET /api/handles/0.NA/<prefix>?type=HS_PUBKEY``)."""
    found = []
    for value in values:
        data = value.get("data") or {}
        if value.get("type") == "HS_PUBKEY" and isinstance(data, dict) and data.get("format") == "key":
            try:
                found.append(SubjectKey(key_from_jwk(data["value"]), int(value["index"])))
            except (JwsError, KeyError, ValueError):
                continue
    return found


async def _put_certificate(store: Store, handle: Handle, jws: str, subject: str, now: int,
                           extra: Sequence[HandleValue] = ()) -> None:
    """Add the certificate (and ``extra`` values) to the record, creating it if needed; an older
    certificate for the same subject and key is replaced."""
    key = key_from_jwk(Jws.parse(jws).claims()["publicKey"])
    replaced = {v.index for v in extra}

    async def attempt() -> None:
        stored = await store.get(handle.key)
        record = stored.record if stored is not None else Record(handle)
        stale = {v.index for v, _jws, claims in certificates(record.values)
                 if fold(str(claims.get("sub", ""))) == fold(subject) and _same_jwk(claims, key)}
        kept = [v for v in record.values if v.index not in stale | replaced] + list(extra)
        new = record.with_values([*kept, HandleValue(free_index(kept, CERT_INDEX), CERT, jws.encode("ascii"), timestamp=now)])
        if stored is None:
            await store.create(new)
        else:
            await store.replace(new, stored.version)

    await retry_on_conflict(attempt, also=(HandleAlreadyExists,), gave_up=f"{handle.text} kept changing; run the command again")


def _same_jwk(claims: dict[str, Any], key: PublicKey) -> bool:
    try:
        return same_key(key_from_jwk(claims.get("publicKey")), key)
    except JwsError:
        return False


def _issuer(keyring: Keyring, authority: AuthoritySnapshot, record_handle: Handle) -> tuple[ValueRef, Any]:
    active = keyring.active
    if active is None:
        raise ConfigurationError("this node has no active signing key: run `idres keys generate`")
    covering = authority.covering(record_handle)
    if covering is None:
        raise PrefixNotHomed(f"{record_handle.text} is not under a prefix homed here; home the parent prefix first")
    return ValueRef(active.index, f"0.NA/{covering}"), keyring.private_key(active.kid)


async def certify_child(
    store: Store, keyring: Keyring, authority: AuthoritySnapshot, child: str, subject: SubjectKey,
    perms: Sequence[Permission], *, now: int, lifetime: int,
) -> str:
    """Issue and store an HS_CERT for a child prefix's key; returns the JWS."""
    handle = prefix_record_handle(child)
    issuer, private = _issuer(keyring, authority, handle)
    sub = ValueRef(subject.index, handle.text)
    if fold(str(issuer)) == fold(str(sub)):
        raise ConfigurationError(f"{child} is this node's own prefix: a parent node certifies it, or use --root on a root node")
    jws = issue_certificate(private, issuer, sub, subject.key, perms, iat=now, nbf=now - NOT_BEFORE_SKEW, exp=now + lifetime)
    await _put_certificate(store, handle, jws, str(sub), now)
    return jws


async def certify_root(
    store: Store, keyring: Keyring, root_handle: str, *, now: int, lifetime: int,
) -> list[str]:
    """Make this node a trust root: a self-issued certificate on ``root_handle`` and certificates, issued by
    it, for the node's key on each of its homed prefixes. Returns the JWS written."""
    active = keyring.active
    if active is None:
        raise ConfigurationError("this node has no active signing key: run `idres keys generate`")
    private = keyring.private_key(active.kid)
    root = ValueRef(active.index, Handle.parse(root_handle).text)
    written = [issue_certificate(private, root, root, private.public_key(), [Permission(EVERYTHING)],
                                 iat=now, nbf=now - NOT_BEFORE_SKEW, exp=now + lifetime)]
    root_key = HandleValue(active.index, PUBKEY, jwk_to_pubkey(public_jwk(private)), timestamp=now)
    await _put_certificate(store, Handle.parse(root_handle), written[0], str(root), now, [root_key])
    for prefix in await store.homed_prefixes():
        handle = prefix_record_handle(prefix)
        sub = ValueRef(active.index, handle.text)
        jws = issue_certificate(private, root, sub, private.public_key(), child_permissions(prefix),
                                iat=now, nbf=now - NOT_BEFORE_SKEW, exp=now + lifetime)
        await _put_certificate(store, handle, jws, str(sub), now)
        written.append(jws)
    return written


async def install_certificate(store: Store, keyring: Keyring, authority: AuthoritySnapshot, jws: str, *, now: int) -> str:
    """Store a certificate issued by a parent for one of this node's keys; returns the record it went to."""
    try:
        claims = Jws.parse(jws).claims()
        key = key_from_jwk(claims.get("publicKey"))
        index, _, handle_text = str(claims.get("sub", "")).partition(":")
        handle = Handle.parse(handle_text)
    except (JwsError, IdresError) as exc:
        raise ConfigurationError(f"not a certificate: {getattr(exc, 'message', exc)}") from None
    entry = next((e for e in keyring.entries if str(e.index) == index), None)
    if entry is None or not same_key(keyring.public_key(entry.kid), key):
        raise ConfigurationError(f"the certificate is for key {claims.get('sub')}, which is not one of this node's keys")
    if not authority.covers(handle):
        raise PrefixNotHomed(f"{handle.text} is not homed here")
    await _put_certificate(store, handle, jws, str(claims["sub"]), now)
    return handle.text
