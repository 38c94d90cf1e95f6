"""Verifying signed records up to a trusted root (registry/trust.py), in an in-memory world.

The world is a dict handle -> values served by a counting fetch function. Keys are fixed test keys:
root (RSA, self-issued on 0.0/0.0) -> secondary (RSA, 0.NA/88.101) -> enterprise (Ed25519,
0.NA/88.101.5) -> the record 88.101.5/SN-1. Rules: those of Handle.Net's verifier (ChainBuilder,
ChainVerifier, HandleVerifier), as docs/signing.md describes them. Time is always passed in.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from registry.jws import b64url, sign_compact, unb64url
from registry.model import PUBLIC_WRITE, HandleValue, ValueRef
from registry.signing import (
    DERIVED_PREFIXES,
    EVERYTHING,
    HANDLES_UNDER_THIS_PREFIX,
    Permission,
    issue_certificate,
    signature_payload,
)
from registry.trust import (
    MAX_CHAIN,
    RecordReport,
    Status,
    TrustAnchor,
    averify,
    verification,
    verify,
)

from .test_signing import (
    PREFIX_CERT_JWS,
    ROOT_CERT_JWS,
    SIGNATURE_CHAIN_JWS,
    SIGNATURE_JWS,
    VECTOR_VALUES,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load_key(name: str):
    return serialization.load_pem_private_key((FIXTURES / name).read_bytes(), password=None)


def seeded_key(name: str) -> ed25519.Ed25519PrivateKey:
    """A fixed Ed25519 key derived from a name, for the extra roles a scenario needs."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())


ROOT = load_key("rsa_root.pem")
SECONDARY = load_key("rsa_prefix.pem")
ENTERPRISE = load_key("ed25519_a.pem")
ENTERPRISE_NEW = load_key("ed25519_b.pem")
OTHER = seeded_key("idres test key: 0.NA/88.100")
ROGUE = seeded_key("idres test key: rogue root")

ROOT_ID = ValueRef(300, "0.0/0.0")
SECONDARY_ID = ValueRef(300, "0.NA/88.101")
ENTERPRISE_ID = ValueRef(300, "0.NA/88.101.5")
ENTERPRISE_NEW_ID = ValueRef(301, "0.NA/88.101.5")
OTHER_ID = ValueRef(300, "0.NA/88.100")

T0 = 1_700_000_000
NOW = T0 + 3600
CERT_NBF = T0 - 86400
CERT_EXP = T0 + 10 * 365 * 86400
SIG_NBF = T0 - 600
SIG_EXP = T0 + 365 * 86400

ANCHOR = TrustAnchor((ROOT.public_key(),))
RECORD = "88.101.5/SN-1"

RECORD_VALUES = (
    HandleValue(1, "URL", b"https://example.org/sn-1", timestamp=T0 - 50),
    HandleValue(2, "EMAIL", b"ops@example.org", permissions=0x0C),
    HandleValue(
        3, "DESC", "Prüfstand 标识".encode(), ttl=T0 + 10**6, ttl_type=1, timestamp=T0 - 40,
        references=(ValueRef(7, "88.101.5/REF"),),
    ),
    HandleValue(100, "HS_ADMIN", b"\x0f\xf3\x00\x00\x00\x0e0.NA/88.101.5\x00\x00\x00\xc8"),
    HandleValue(1100, "HS_SECKEY", b"secret", permissions=0x0C),
)
PUBLIC_INDEXES = (1, 3, 100)


# --- building the world ------------------------------------------------------------------------------


def cert(
    index: int, issuer_key, issuer: ValueRef, subject: ValueRef, subject_key, perms: Sequence[Permission], *,
    iat: int = T0, nbf: int | None = CERT_NBF, exp: int | None = CERT_EXP,
) -> HandleValue:
    token = issue_certificate(issuer_key, issuer, subject, subject_key.public_key(), perms, iat=iat, nbf=nbf, exp=exp)
    return HandleValue(index, "HS_CERT", token.encode("ascii"))


def sign(
    handle: str, values: Sequence[HandleValue], key, issuer: ValueRef, *, iat: int = T0, nbf: int | None = SIG_NBF,
    exp: int | None = SIG_EXP, chain: Sequence[str] | None = None, index: int = 400,
) -> list[HandleValue]:
    """``values`` plus an HS_SIGNATURE at ``index`` over their public values (HS_SIGNATUREs excluded)."""
    covered = [v for v in values if v.public_read and v.type.upper() != "HS_SIGNATURE"]
    payload = signature_payload(handle, covered, issuer, iat=iat, nbf=nbf, exp=exp, chain=chain)
    return [*values, HandleValue(index, "HS_SIGNATURE", sign_compact(key, payload).encode("ascii"))]


def root_cert(**kw) -> HandleValue:
    return cert(400, ROOT, ROOT_ID, ROOT_ID, ROOT, [Permission(EVERYTHING)], **kw)


def secondary_cert(perms: Sequence[Permission] | None = None, **kw) -> HandleValue:
    perms = perms or [Permission(DERIVED_PREFIXES, "0.NA/88.101"), Permission(HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101")]
    return cert(400, ROOT, ROOT_ID, SECONDARY_ID, SECONDARY, perms, **kw)


def enterprise_cert(index: int = 400, key=ENTERPRISE, subject: ValueRef = ENTERPRISE_ID, **kw) -> HandleValue:
    return cert(index, SECONDARY, SECONDARY_ID, subject, key, [Permission(HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101.5")], **kw)


def records(**replace: list[HandleValue]) -> dict[str, list[HandleValue]]:
    """The three-tier world; keyword arguments replace the certificates of ``root``, ``secondary``, ``enterprise``."""
    return {
        "0.0/0.0": [HandleValue(100, "HS_ADMIN", b"admin"), *replace.get("root", [root_cert()])],
        "0.NA/88.101": [HandleValue(100, "HS_ADMIN", b"admin"), *replace.get("secondary", [secondary_cert()])],
        "0.NA/88.101.5": [HandleValue(100, "HS_ADMIN", b"admin"), *replace.get("enterprise", [enterprise_cert()])],
    }


class World:
    """Serves records by handle and counts what the verifier asks for."""

    def __init__(self, data: dict[str, list[HandleValue]]) -> None:
        self.data = data
        self.fetches: list[str] = []

    def fetch(self, handle: str) -> list[HandleValue] | None:
        self.fetches.append(handle)
        values = self.data.get(handle)
        return None if values is None else list(values)

    async def afetch(self, handle: str) -> list[HandleValue] | None:
        return self.fetch(handle)

    def counts(self) -> Counter:
        return Counter(self.fetches)


def check(handle: str, values: Sequence[HandleValue], world: World | None = None, *, now: int = NOW, anchor: TrustAnchor = ANCHOR) -> RecordReport:
    world = world or World(records())
    report = verify(handle, values, anchor, now, world.fetch)
    assert max(world.counts().values(), default=0) <= 1, f"a handle was fetched twice: {world.fetches}"
    return report


SIGNED = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID)


def only_signature(report: RecordReport):
    assert len(report.signatures) == 1
    return report.signatures[0]


def replaced(values: Sequence[HandleValue], new: HandleValue) -> list[HandleValue]:
    return [new if v.index == new.index else v for v in values]


def flip_signature_byte(token: str) -> str:
    head, body, sig = token.split(".")
    raw = bytearray(unb64url(sig))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


# --- the three-tier chain ----------------------------------------------------------------------------


def test_status_names():
    assert [s.value for s in Status] == [
        "signed and valid", "unsigned", "bad digest", "bad signature", "expired", "not yet valid", "untrusted chain",
    ]


def test_three_tier_chain_verifies():
    world = World(records())
    report = check(RECORD, SIGNED, world)
    assert report.ok
    assert report.handle == RECORD
    assert report.values == {1: Status.VALID, 3: Status.VALID, 100: Status.VALID}  # 2 and 1100 are not public
    sig = only_signature(report)
    assert (sig.index, sig.issuer, sig.status, sig.problem) == (400, "300:0.NA/88.101.5", Status.VALID, None)
    assert (sig.verified, sig.bad_digests, sig.missing) == ([1, 3, 100], [], [])
    assert [(link.subject, link.issuer) for link in sig.chain] == [
        ("88.101.5/SN-1", "300:0.NA/88.101.5"),
        ("300:0.NA/88.101.5", "300:0.NA/88.101"),
        ("300:0.NA/88.101", "300:0.0/0.0"),
        ("300:0.0/0.0", "300:0.0/0.0"),
    ]
    assert all(link.valid_signature and link.in_time and link.authorised for link in sig.chain)
    assert world.fetches == ["0.NA/88.101.5", "0.NA/88.101", "0.0/0.0"]


def test_verification_generator_asks_for_each_handle_up_the_chain():
    world = records()
    walk = verification(RECORD, SIGNED, ANCHOR, NOW)
    asked = [next(walk)]
    with pytest.raises(StopIteration) as done:
        while True:
            asked.append(walk.send(world[asked[-1]]))
    assert asked == ["0.NA/88.101.5", "0.NA/88.101", "0.0/0.0"]
    assert done.value.value == check(RECORD, SIGNED)


def test_a_record_without_signatures_is_unsigned():
    world = World(records())
    report = check(RECORD, RECORD_VALUES, world)
    assert not report.ok
    assert report.values == {i: Status.UNSIGNED for i in PUBLIC_INDEXES}
    assert report.signatures == []
    assert world.fetches == []


def test_a_missing_certificate_record_is_untrusted():
    world = World({})
    report = check(RECORD, SIGNED, world)
    sig = only_signature(report)
    assert sig.status == Status.UNTRUSTED
    assert "88.101.5" in sig.problem
    assert report.values == {i: Status.UNTRUSTED for i in PUBLIC_INDEXES}
    assert not report.ok


# --- Handle.Net 9's own vectors -------------------------------------------------------------------------

VECTOR_TIME = 1700000000


def vector_world() -> World:
    return World({
        "0.0/0.0": [HandleValue(400, "HS_CERT", ROOT_CERT_JWS.encode())],
        "0.NA/21.T14999": [HandleValue(400, "HS_CERT", PREFIX_CERT_JWS.encode())],
    })


@pytest.mark.parametrize("token", [SIGNATURE_JWS, SIGNATURE_CHAIN_JWS], ids=["no-chain", "chain"])
def test_handle_net_vectors_verify(token):
    values = [*VECTOR_VALUES, HandleValue(400, "HS_SIGNATURE", token.encode())]
    world = vector_world()
    report = check("21.T14999/ABC", values, world, now=VECTOR_TIME, anchor=TrustAnchor((ROOT.public_key(),)))
    assert report.ok
    assert report.values == {1: Status.VALID, 3: Status.VALID, 100: Status.VALID}
    sig = only_signature(report)
    assert sig.verified == [1, 3, 100]
    assert [(link.subject, link.issuer) for link in sig.chain] == [
        ("21.T14999/ABC", "300:0.NA/21.T14999"),
        ("300:0.NA/21.T14999", "300:0.0/0.0"),
        ("300:0.0/0.0", "300:0.0/0.0"),
    ]
    assert world.fetches == ["0.NA/21.T14999", "0.0/0.0"]


def test_handle_net_vectors_with_another_root_key_are_untrusted():
    values = [*VECTOR_VALUES, HandleValue(400, "HS_SIGNATURE", SIGNATURE_JWS.encode())]
    report = check("21.T14999/ABC", values, vector_world(), now=VECTOR_TIME, anchor=TrustAnchor((SECONDARY.public_key(),)))
    assert only_signature(report).status == Status.UNTRUSTED
    assert not report.ok


# --- tampering ----------------------------------------------------------------------------------------------

TAMPERING = {
    "data": lambda v: dataclasses.replace(v, data=v.data + b"!"),
    "type": lambda v: dataclasses.replace(v, type=v.type + "X"),
    "type case": lambda v: dataclasses.replace(v, type=v.type.lower()),
    "ttl": lambda v: dataclasses.replace(v, ttl=v.ttl + 1),
    "ttl type": lambda v: dataclasses.replace(v, ttl_type=1 - v.ttl_type),
    "public write bit": lambda v: dataclasses.replace(v, permissions=v.permissions ^ PUBLIC_WRITE),
    "admin bits": lambda v: dataclasses.replace(v, permissions=v.permissions & ~0x0C),
    "references": lambda v: dataclasses.replace(v, references=(*v.references, ValueRef(1, "88.101.5/OTHER"))),
}


@pytest.mark.parametrize("index", PUBLIC_INDEXES)
@pytest.mark.parametrize("change", list(TAMPERING), ids=list(TAMPERING))
def test_tampering_makes_that_value_bad_digest(change, index):
    original = next(v for v in SIGNED if v.index == index)
    tampered = TAMPERING[change](original)
    assert tampered.public_read and tampered != original
    report = check(RECORD, replaced(SIGNED, tampered))
    assert report.values[index] == Status.BAD_DIGEST
    assert all(status == Status.VALID for i, status in report.values.items() if i != index)
    sig = only_signature(report)
    assert sig.bad_digests == [index]
    assert sig.verified == [i for i in PUBLIC_INDEXES if i != index]
    assert not report.ok


@pytest.mark.parametrize("index", PUBLIC_INDEXES)
def test_changing_only_the_timestamp_keeps_the_value_valid(index):
    original = next(v for v in SIGNED if v.index == index)
    report = check(RECORD, replaced(SIGNED, dataclasses.replace(original, timestamp=original.timestamp + 12345)))
    assert report.ok
    assert report.values == {i: Status.VALID for i in PUBLIC_INDEXES}


# --- validity windows ------------------------------------------------------------------------------------


def test_expired_signature():
    values = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID, exp=NOW - 1)
    report = check(RECORD, values)
    assert only_signature(report).status == Status.EXPIRED
    assert report.values == {i: Status.EXPIRED for i in PUBLIC_INDEXES}
    assert not report.ok


def test_not_yet_valid_signature():
    values = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID, nbf=NOW + 1)
    report = check(RECORD, values)
    assert only_signature(report).status == Status.NOT_YET_VALID
    assert report.values == {i: Status.NOT_YET_VALID for i in PUBLIC_INDEXES}
    assert not report.ok


def test_validity_window_bounds_are_inclusive():
    values = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID, nbf=NOW - 10, exp=NOW + 10)
    assert check(RECORD, values, now=NOW - 10).ok
    assert check(RECORD, values, now=NOW + 10).ok
    assert only_signature(check(RECORD, values, now=NOW + 11)).status == Status.EXPIRED
    assert only_signature(check(RECORD, values, now=NOW - 11)).status == Status.NOT_YET_VALID


def test_signature_without_times_never_expires():
    values = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID, nbf=None, exp=None)
    assert check(RECORD, values, now=T0 + 5 * 365 * 86400).ok


@pytest.mark.parametrize(
    ("which", "subject"),
    [("enterprise", "300:0.NA/88.101.5"), ("secondary", "300:0.NA/88.101"), ("root", "300:0.0/0.0")],
)
@pytest.mark.parametrize("window", ["expired", "not yet valid"])
def test_certificate_outside_its_window_makes_the_chain_untrusted(which, subject, window):
    times = {"exp": NOW - 1} if window == "expired" else {"nbf": NOW + 1}
    make = {"enterprise": enterprise_cert, "secondary": secondary_cert, "root": root_cert}[which]
    report = check(RECORD, SIGNED, World(records(**{which: [make(**times)]})))
    sig = only_signature(report)
    assert sig.status == Status.UNTRUSTED
    assert subject in sig.problem
    assert report.values == {i: Status.UNTRUSTED for i in PUBLIC_INDEXES}
    assert not report.ok


# --- perms ---------------------------------------------------------------------------------------------------


def test_key_certified_for_another_prefix_cannot_sign():
    world = World({
        **records(),
        "0.NA/88.100": [cert(
            400, ROOT, ROOT_ID, OTHER_ID, OTHER,
            [Permission(HANDLES_UNDER_THIS_PREFIX, "0.NA/88.100"), Permission(DERIVED_PREFIXES, "0.NA/88.100")],
        )],
    })
    values = sign("88.101/SN-9", RECORD_VALUES, OTHER, OTHER_ID)
    report = check("88.101/SN-9", values, world)
    sig = only_signature(report)
    assert sig.status == Status.UNTRUSTED
    assert "0.NA/88.100" in sig.problem
    assert [link.authorised for link in sig.chain] == [False, True, True]
    assert report.values == {i: Status.UNTRUSTED for i in PUBLIC_INDEXES}
    assert not report.ok
    # the same key may sign under its own prefix
    assert check("88.100/SN-9", sign("88.100/SN-9", RECORD_VALUES, OTHER, OTHER_ID), World(world.data)).ok


def test_every_issuer_up_the_chain_must_cover_the_record():
    # every issuer must cover the verified handle: the secondary may certify 88.101.5's key, but its own perms do not reach 88.101.5/…
    world = World(records(secondary=[secondary_cert([Permission(HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101")])]))
    report = check(RECORD, SIGNED, world)
    sig = only_signature(report)
    assert sig.status == Status.UNTRUSTED
    assert "300:0.NA/88.101" in sig.problem
    assert [link.authorised for link in sig.chain] == [True, False, True, True]


def test_the_roots_own_perms_must_cover_the_record():
    narrow_root = cert(400, ROOT, ROOT_ID, ROOT_ID, ROOT, [Permission(HANDLES_UNDER_THIS_PREFIX, "0.NA/99")])
    report = check(RECORD, SIGNED, World(records(root=[narrow_root])))
    assert only_signature(report).status == Status.UNTRUSTED
    assert only_signature(report).chain[-1].authorised is False


# --- the root -------------------------------------------------------------------------------------------------


def test_a_root_key_that_is_not_configured_is_untrusted():
    report = check(RECORD, SIGNED, anchor=TrustAnchor((SECONDARY.public_key(), ENTERPRISE.public_key())))
    sig = only_signature(report)
    assert sig.status == Status.UNTRUSTED
    assert "0.0/0.0" in sig.problem
    assert not report.ok


def test_a_rogue_self_issued_root_is_untrusted():
    rogue_root = cert(400, ROGUE, ROOT_ID, ROOT_ID, ROGUE, [Permission(EVERYTHING)])
    rogue_secondary = cert(
        400, ROGUE, ROOT_ID, SECONDARY_ID, SECONDARY, [Permission(EVERYTHING)]
    )
    report = check(RECORD, SIGNED, World(records(root=[rogue_root], secondary=[rogue_secondary])))
    assert only_signature(report).status == Status.UNTRUSTED
    assert not report.ok


def test_a_self_issued_certificate_elsewhere_is_not_a_root():
    self_issued = cert(400, SECONDARY, SECONDARY_ID, SECONDARY_ID, SECONDARY, [Permission(EVERYTHING)])
    world = World(records(secondary=[self_issued]))
    both = TrustAnchor((ROOT.public_key(), SECONDARY.public_key()))
    report = check(RECORD, SIGNED, world, anchor=both)
    assert only_signature(report).status == Status.UNTRUSTED
    assert "0.0/0.0" not in world.fetches
    # with 0.NA/88.101 configured as the trust root (as the IDIS forks do) the same chain is trusted
    local = TrustAnchor((SECONDARY.public_key(),), root_handle="0.NA/88.101")
    assert check(RECORD, SIGNED, World(world.data), anchor=local).ok


# --- signatures ------------------------------------------------------------------------------------------------


def test_a_signature_that_does_not_verify_is_bad():
    sig_value = SIGNED[-1]
    forged = dataclasses.replace(sig_value, data=flip_signature_byte(sig_value.data.decode()).encode())
    report = check(RECORD, replaced(SIGNED, forged))
    assert only_signature(report).status == Status.BAD_SIGNATURE
    assert report.values == {i: Status.BAD_SIGNATURE for i in PUBLIC_INDEXES}
    assert not report.ok


def test_a_certificate_that_does_not_verify_makes_the_chain_untrusted():
    good = enterprise_cert()
    broken = dataclasses.replace(good, data=flip_signature_byte(good.data.decode()).encode())
    report = check(RECORD, SIGNED, World(records(enterprise=[broken])))
    sig = only_signature(report)
    assert sig.status == Status.UNTRUSTED
    assert "300:0.NA/88.101.5" in sig.problem
    assert [link.valid_signature for link in sig.chain] == [True, False, True, True]


def test_an_unparsable_signature_is_bad_and_fails_the_record():
    values = [*SIGNED, HandleValue(401, "HS_SIGNATURE", b"not a jws")]
    report = check(RECORD, values)
    statuses = {s.index: s.status for s in report.signatures}
    assert statuses == {400: Status.VALID, 401: Status.BAD_SIGNATURE}
    assert not report.ok


def test_a_signature_for_another_handle_does_not_count():
    copied = [*RECORD_VALUES, SIGNED[-1]]  # SN-1's signature replayed on SN-2
    report = check("88.101.5/SN-2", copied)
    assert only_signature(report).status == Status.UNTRUSTED
    assert Status.VALID not in report.values.values()
    assert not report.ok


# --- coverage ----------------------------------------------------------------------------------------------------


def test_a_value_added_after_signing_is_unsigned():
    values = [*SIGNED, HandleValue(4, "URL", b"https://example.org/late")]
    report = check(RECORD, values)
    assert report.values == {1: Status.VALID, 3: Status.VALID, 4: Status.UNSIGNED, 100: Status.VALID}
    assert only_signature(report).verified == [1, 3, 100]
    assert not report.ok


def test_a_private_value_added_after_signing_needs_no_signature():
    values = [*SIGNED, HandleValue(5, "EMAIL", b"late@example.org", permissions=0x0C)]
    report = check(RECORD, values)
    assert report.ok
    assert 5 not in report.values


def test_a_signed_value_missing_from_the_record_is_reported():
    values = [v for v in SIGNED if v.index != 3]  # as a type- or index-filtered answer would be
    report = check(RECORD, values)
    sig = only_signature(report)
    assert sig.missing == [3]
    assert sig.verified == [1, 100]
    assert report.values == {1: Status.VALID, 100: Status.VALID}
    assert not report.ok


# --- chain walking ---------------------------------------------------------------------------------------------


def test_a_cycle_terminates_untrusted():
    a, b = ValueRef(300, "0.NA/88.201"), ValueRef(300, "0.NA/88.202")
    world = World({
        "0.NA/88.201": [cert(400, OTHER, b, a, ENTERPRISE, [Permission(EVERYTHING)])],
        "0.NA/88.202": [cert(400, ENTERPRISE, a, b, OTHER, [Permission(EVERYTHING)])],
    })
    report = check("88.201/x", sign("88.201/x", RECORD_VALUES, ENTERPRISE, a), world)
    sig = only_signature(report)
    assert sig.status == Status.UNTRUSTED
    assert "cycle" in sig.problem
    assert world.counts() == Counter({"0.NA/88.201": 1, "0.NA/88.202": 1})


def test_a_chain_naming_the_same_link_twice_terminates_untrusted():
    a = ValueRef(300, "0.NA/88.201")
    # value 401 certifies 300:0.NA/88.201 as issued by 301:0.NA/88.201; the signature's chain names it twice
    loop = cert(401, ENTERPRISE, ValueRef(301, "0.NA/88.201"), a, ENTERPRISE, [Permission(EVERYTHING)])
    world = World({"0.NA/88.201": [loop]})
    chain = ["401:0.NA/88.201", "401:0.NA/88.201"]
    report = check("88.201/x", sign("88.201/x", RECORD_VALUES, ENTERPRISE, a, chain=chain), world)
    sig = only_signature(report)
    assert sig.status == Status.UNTRUSTED
    assert "cycle" in sig.problem
    assert world.fetches == ["0.NA/88.201"]


def long_chain_world(intermediates: int) -> tuple[World, str, list[HandleValue]]:
    """88.300.0/x signed as 300:0.NA/88.300.0, certified by 0.NA/88.300.1, …, the last by the root."""
    data = records()
    ids = [ValueRef(300, f"0.NA/88.300.{i}") for i in range(intermediates)]
    for i, subject in enumerate(ids):
        if i + 1 < intermediates:
            issuer, issuer_key = ids[i + 1], OTHER
        else:
            issuer, issuer_key = ROOT_ID, ROOT
        data[subject.handle] = [cert(400, issuer_key, issuer, subject, OTHER, [Permission(EVERYTHING)])]
    handle = "88.300.0/x"
    return World(data), handle, sign(handle, RECORD_VALUES, OTHER, ids[0])


def test_a_long_chain_within_the_limit_verifies():
    world, handle, values = long_chain_world(MAX_CHAIN - 1)
    report = check(handle, values, world)
    assert report.ok
    assert len(only_signature(report).chain) == MAX_CHAIN + 1  # the signature, 49 certificates, the root


def test_a_chain_longer_than_the_limit_terminates_untrusted():
    world, handle, values = long_chain_world(MAX_CHAIN + 10)
    report = check(handle, values, world)
    sig = only_signature(report)
    assert sig.status == Status.UNTRUSTED
    assert "too long" in sig.problem
    assert len(world.fetches) <= MAX_CHAIN


def test_the_latest_certificate_for_the_issuer_wins():
    older = enterprise_cert(index=401, key=ENTERPRISE_NEW, iat=T0 - 1000)
    newer = enterprise_cert(index=400, key=ENTERPRISE, iat=T0)
    assert check(RECORD, SIGNED, World(records(enterprise=[older, newer]))).ok
    assert check(RECORD, SIGNED, World(records(enterprise=[newer, older]))).ok
    # when the newest certificate names another key, the signature no longer verifies
    newest_other = enterprise_cert(index=402, key=ENTERPRISE_NEW, iat=T0 + 10)
    report = check(RECORD, SIGNED, World(records(enterprise=[newer, newest_other])))
    assert only_signature(report).status == Status.BAD_SIGNATURE


def test_a_chain_entry_with_an_index_names_the_certificate():
    decoy = enterprise_cert(index=401, key=ENTERPRISE_NEW, iat=T0 + 10)  # newer, wrong key
    world = records(enterprise=[enterprise_cert(index=400), decoy])
    plain = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID)
    assert only_signature(check(RECORD, plain, World(world))).status == Status.BAD_SIGNATURE
    chained = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID, chain=["400:0.NA/88.101.5"])
    assert check(RECORD, chained, World(world)).ok


def test_a_chain_entry_naming_a_missing_index_is_untrusted():
    chained = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID, chain=["499:0.NA/88.101.5"])
    report = check(RECORD, chained)
    assert only_signature(report).status == Status.UNTRUSTED
    assert "499" in only_signature(report).problem


# --- key rotation -------------------------------------------------------------------------------------------


def rotation_world() -> World:
    return World(records(enterprise=[
        enterprise_cert(index=400, key=ENTERPRISE, subject=ENTERPRISE_ID, iat=T0),
        enterprise_cert(index=401, key=ENTERPRISE_NEW, subject=ENTERPRISE_NEW_ID, iat=T0 + 100),
    ]))


OLD_EXP = T0 + 5000


def test_after_rotation_both_keys_verify():
    old = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID, exp=OLD_EXP)
    new = sign("88.101.5/SN-2", RECORD_VALUES, ENTERPRISE_NEW, ENTERPRISE_NEW_ID, iat=T0 + 200)
    assert check(RECORD, old, rotation_world()).ok
    report = check("88.101.5/SN-2", new, rotation_world())
    assert report.ok
    assert only_signature(report).issuer == "301:0.NA/88.101.5"


def test_a_record_signed_by_the_old_key_verifies_until_its_exp():
    old = sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID, exp=OLD_EXP)
    assert check(RECORD, old, rotation_world(), now=OLD_EXP).ok
    report = check(RECORD, old, rotation_world(), now=OLD_EXP + 1)
    assert only_signature(report).status == Status.EXPIRED
    assert report.values == {i: Status.EXPIRED for i in PUBLIC_INDEXES}
    new = sign(RECORD, RECORD_VALUES, ENTERPRISE_NEW, ENTERPRISE_NEW_ID, iat=T0 + 200)
    assert check(RECORD, new, rotation_world(), now=OLD_EXP + 1).ok


def test_two_signatures_share_the_fetches():
    both = sign(RECORD, sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID), ENTERPRISE_NEW, ENTERPRISE_NEW_ID, index=401)
    world = rotation_world()
    report = check(RECORD, both, world)
    assert report.ok
    assert [(s.index, s.status) for s in report.signatures] == [(400, Status.VALID), (401, Status.VALID)]
    assert world.counts() == Counter({"0.NA/88.101.5": 1, "0.NA/88.101": 1, "0.0/0.0": 1})


def test_a_second_signature_with_a_bad_digest_fails_the_record():
    # as in Handle.Net: one HS_SIGNATURE with bad digests makes the record invalid,
    # even when another signature covers every value correctly.
    stale_values = replaced(RECORD_VALUES, dataclasses.replace(RECORD_VALUES[0], data=b"https://example.org/old"))
    stale = sign(RECORD, stale_values, ENTERPRISE_NEW, ENTERPRISE_NEW_ID, index=401)[-1]
    values = [*SIGNED, stale]
    report = check(RECORD, values, rotation_world())
    statuses = {s.index: s for s in report.signatures}
    assert statuses[401].bad_digests == [1]
    assert statuses[400].status == Status.VALID
    assert not report.ok


# --- malformed data never breaks verification ------------------------------------------------------------


def test_a_signed_payload_with_malformed_digests_does_not_raise():
    payload = (
        b'{"digests":{"alg":"SHA-256","digests":5},"iss":"300:0.NA/88.101.5","sub":"88.101.5/SN-1","iat":1700000000}'
    )
    values = [*RECORD_VALUES, HandleValue(400, "HS_SIGNATURE", sign_compact(ENTERPRISE, payload).encode())]
    report = check(RECORD, values)
    assert not report.ok
    assert Status.VALID not in report.values.values()


def test_a_non_ascii_certificate_in_a_chain_record_does_not_raise():
    garbage = [HandleValue(401, "HS_CERT", "eyJhbGciOiJSUzI1NiJ9.é.AAAA".encode())]
    ascii_garbage = [HandleValue(401, "HS_CERT", b"eyJhbGciOiJSUzI1NiJ9.!.AAAA")]
    expected = check(RECORD, SIGNED, World(records(enterprise=[enterprise_cert(), *ascii_garbage])))
    report = check(RECORD, SIGNED, World(records(enterprise=[enterprise_cert(), *garbage])))
    assert report == expected


# --- the async driver -------------------------------------------------------------------------------------


def scenarios() -> dict[str, tuple[str, list[HandleValue], dict, int]]:
    return {
        "valid": (RECORD, SIGNED, records(), NOW),
        "tampered": (RECORD, replaced(SIGNED, dataclasses.replace(SIGNED[0], data=b"x")), records(), NOW),
        "expired": (RECORD, SIGNED, records(), SIG_EXP + 1),
        "untrusted": (RECORD, SIGNED, records(enterprise=[enterprise_cert(exp=NOW - 1)]), NOW),
        "missing": (RECORD, [v for v in SIGNED if v.index != 3], records(), NOW),
        "rotation": (
            RECORD,
            sign(RECORD, sign(RECORD, RECORD_VALUES, ENTERPRISE, ENTERPRISE_ID), ENTERPRISE_NEW, ENTERPRISE_NEW_ID, index=401),
            rotation_world().data,
            NOW,
        ),
        "no certificates": (RECORD, SIGNED, {}, NOW),
    }


@pytest.mark.parametrize("name", list(scenarios()))
async def test_sync_and_async_drivers_agree(name):
    handle, values, data, now = scenarios()[name]
    sync_world, async_world = World(data), World(data)
    expected = verify(handle, values, ANCHOR, now, sync_world.fetch)
    report = await averify(handle, values, ANCHOR, now, async_world.afetch)
    assert report == expected
    assert async_world.fetches == sync_world.fetches
    assert max(async_world.counts().values(), default=0) <= 1
