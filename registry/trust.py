"""Verifying a record's signatures up to a trusted root. Pure: the caller fetches what the walk asks for.

``verification(...)`` is a generator: it yields the handles whose values it needs (certificates along
the chain) and is sent those values (or None); it returns a ``RecordReport``. ``verify`` and
``averify`` drive it with a plain or an async fetch function. The rules are Handle.Net's
(ChainBuilder, ChainVerifier, HandleVerifier): a signature's issuer ``index:handle`` is certified by the
newest HS_CERT in that handle whose ``sub`` is the issuer (or by the value a ``chain`` entry names),
and so on up to a self-issued certificate on the trust root handle whose key the verifier trusts.
Every issuer along the chain must hold a permission covering the verified handle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Awaitable, Callable, Generator, Sequence

from .jws import Jws, JwsError, PublicKey, key_from_jwk, public_jwk, same_key
from .model import Handle, HandleValue, fold
from .signing import Permission, certificates, covers, needs_signature, value_digest
from .values import SIGNATURE

MAX_CHAIN = 50
ROOT_HANDLE = "0.0/0.0"

Fetch = Callable[[str], "Sequence[HandleValue] | None"]
AsyncFetch = Callable[[str], Awaitable["Sequence[HandleValue] | None"]]


class Status(str, Enum):
    VALID = "signed and valid"
    UNSIGNED = "unsigned"
    BAD_DIGEST = "bad digest"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    UNTRUSTED = "untrusted chain"


# When several signatures speak of one value, the best verdict wins.
_RANK = [Status.VALID, Status.EXPIRED, Status.NOT_YET_VALID, Status.UNTRUSTED, Status.BAD_SIGNATURE, Status.BAD_DIGEST, Status.UNSIGNED]


@dataclass(frozen=True)
class TrustAnchor:
    root_keys: tuple[PublicKey, ...]
    root_handle: str = ROOT_HANDLE


@dataclass
class Link:
    subject: str
    issuer: str
    valid_signature: bool
    in_time: bool
    authorised: bool


@dataclass
class SignatureReport:
    index: int
    issuer: str = ""
    status: Status = Status.UNTRUSTED
    problem: str | None = None
    chain: list[Link] = field(default_factory=list)
    verified: list[int] = field(default_factory=list)
    bad_digests: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


@dataclass
class RecordReport:
    handle: str
    values: dict[int, Status]
    signatures: list[SignatureReport]

    @property
    def ok(self) -> bool:
        """Every value signed and valid, and no signature faulty: one bad signature fails the record,
        as it does for Handle.Net's verifier."""
        return bool(self.values) and all(s == Status.VALID for s in self.values.values()) and not any(
            r.missing or r.bad_digests or r.status != Status.VALID for r in self.signatures
        )

    def problem(self) -> str:
        """Why the record does not verify, in a phrase: the first faulty signature, or the values at fault."""
        for signature in self.signatures:
            if signature.status != Status.VALID and signature.problem:
                return f"signature {signature.index} by {signature.issuer}: {signature.problem}"
        bad = {index: status.value for index, status in self.values.items() if status != Status.VALID}
        if not self.signatures:
            return "it carries no HS_SIGNATURE"
        return ", ".join(f"value {i} {s}" for i, s in sorted(bad.items())) or "not verified"


class _Untrusted(Exception):
    pass


class SignatureMemo:
    """Checks of certificate signatures already made, for a verifier that meets the same chain for
    every record of a prefix. Owned by the caller; bounded (the oldest results are forgotten first).
    A record's own signature is never looked up here: it is checked every time."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._results: dict[tuple[bytes, bytes, str], bool] = {}

    def verified(self, jws: Jws, key: PublicKey) -> bool:
        token = (jws.signing_input, jws.signature, str(sorted(public_jwk(key).items())))
        result = self._results.get(token)
        if result is None:
            result = jws.verify(key)
            if len(self._results) >= self._max:
                del self._results[next(iter(self._results))]
            self._results[token] = result
        return result

    def __len__(self) -> int:
        return len(self._results)


def _time_status(claims: dict[str, Any], now: int) -> Status:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, (int, float)) and now > exp:
        return Status.EXPIRED
    if isinstance(nbf, (int, float)) and now < nbf:
        return Status.NOT_YET_VALID
    return Status.VALID


def _perms(claims: dict[str, Any]) -> list[Permission]:
    perms = claims.get("perms") or []
    if not isinstance(perms, list):
        raise _Untrusted("certificate perms are not a list")
    try:
        return [Permission.from_json(p) for p in perms]
    except JwsError as exc:
        raise _Untrusted(str(exc)) from None


def _key(claims: dict[str, Any], who: str) -> PublicKey:
    try:
        return key_from_jwk(claims.get("publicKey"))
    except JwsError as exc:
        raise _Untrusted(f"certificate of {who}: {exc.message}") from None


def _split_ref(text: str) -> tuple[int, str]:
    index, colon, handle = text.partition(":")
    if colon and index.isascii() and index.isdigit():
        return int(index), handle
    return 0, text


def _same_identity(a: Any, b: Any) -> bool:
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    (ia, ha), (ib, hb) = _split_ref(a), _split_ref(b)
    return ia == ib and fold(ha) == fold(hb)


def _lookup(values: Sequence[HandleValue] | None, index: int, subject: str) -> Jws:
    if not values:
        raise _Untrusted(f"no certificate found for {subject}")
    if index > 0:
        for value in values:
            if value.index == index:
                try:
                    return Jws.parse(value.data.decode("utf-8"))
                except (JwsError, UnicodeDecodeError):
                    raise _Untrusted(f"value {index} named by the chain is not a JWS") from None
        raise _Untrusted(f"the chain names index {index}, which is missing")
    best, best_iat = None, -1.0
    for _value, jws, claims in certificates(values):
        iat = claims.get("iat")
        iat = float(iat) if isinstance(iat, (int, float)) and not isinstance(iat, bool) else 0.0
        if _same_identity(claims.get("sub"), subject) and (best is None or iat > best_iat):
            best, best_iat = (jws, claims), iat
    if best is None:
        raise _Untrusted(f"no HS_CERT with subject {subject}")
    return best[0]


def _chain(
    jws: Jws, claims: dict[str, Any], handle: str, anchor: TrustAnchor, now: int, fetched: dict[str, Any],
    memo: SignatureMemo | None = None,
) -> Generator[str, Any, list[Link]]:
    """Walk from a signature to a trusted self-issued root; raises _Untrusted with the reason."""
    links: list[Link] = []
    chain: list[str] = []
    seen: set[str] = set()
    child, child_claims = jws, claims
    while True:
        iss, sub = child_claims.get("iss"), child_claims.get("sub")
        if not isinstance(iss, str):
            raise _Untrusted("a JWS without issuer")
        if sub == iss:  # self-issued: the root
            key = _key(child_claims, iss)
            links.append(_link(child, child_claims, key, _perms(child_claims), handle, now, memo if links else None))
            if fold(_split_ref(sub)[1]) != fold(anchor.root_handle) or not any(same_key(key, k) for k in anchor.root_keys):
                raise _Untrusted(f"the chain ends at {sub}, which is not a trusted root")
            return links
        if len(links) >= MAX_CHAIN:
            raise _Untrusted("chain too long")
        if not chain:
            chain = [c for c in child_claims.get("chain") or [] if isinstance(c, str)] or [_split_ref(iss)[1]]
        step, chain = chain[0], chain[1:]
        if step in seen:
            raise _Untrusted("the chain has a cycle")
        seen.add(step)
        index, where = _split_ref(step)
        if where not in fetched:
            fetched[where] = yield where
        parent = _lookup(fetched[where], index, iss)
        try:
            parent_claims = parent.claims()
        except JwsError as exc:
            raise _Untrusted(f"certificate of {iss}: {exc.message}") from None
        if not _same_identity(parent_claims.get("sub"), iss):
            raise _Untrusted(f"chain is broken: certificate for {parent_claims.get('sub')} where {iss} signed")
        memo_for_link = memo if links else None  # the first link is the record's own signature
        links.append(_link(child, child_claims, _key(parent_claims, iss), _perms(parent_claims), handle, now, memo_for_link))
        child, child_claims = parent, parent_claims


def _link(jws: Jws, claims: dict[str, Any], issuer_key: PublicKey, issuer_perms: list[Permission], handle: str, now: int,
          memo: SignatureMemo | None = None) -> Link:
    return Link(
        subject=str(claims.get("sub")),
        issuer=str(claims.get("iss")),
        valid_signature=memo.verified(jws, issuer_key) if memo is not None else jws.verify(issuer_key),
        in_time=_time_status(claims, now) == Status.VALID,
        authorised=any(covers(p, handle) for p in issuer_perms),
    )


def _check_signature(
    value: HandleValue, handle: str, record: Sequence[HandleValue], anchor: TrustAnchor, now: int, fetched: dict[str, Any],
    memo: SignatureMemo | None = None,
) -> Generator[str, Any, SignatureReport]:
    report = SignatureReport(value.index)
    try:
        jws = Jws.parse(value.data.decode("ascii"))
        claims = jws.claims()
    except (JwsError, UnicodeDecodeError) as exc:
        report.status, report.problem = Status.BAD_SIGNATURE, f"cannot parse the signature: {exc}"
        return report
    report.issuer = str(claims.get("iss", ""))
    _compare_digests(claims, handle, record, report)
    if not isinstance(claims.get("sub"), str) or fold(claims["sub"]) != fold(handle):
        report.status, report.problem = Status.UNTRUSTED, f"signature is for {claims.get('sub')!r}, not {handle}"
        return report
    try:
        report.chain = yield from _chain(jws, claims, handle, anchor, now, fetched, memo)
    except _Untrusted as exc:
        report.status, report.problem = Status.UNTRUSTED, str(exc)
        return report
    report.status, report.problem = _verdict(report.chain, claims, now)
    return report


def _verdict(chain: list[Link], claims: dict[str, Any], now: int) -> tuple[Status, str | None]:
    first = chain[0]
    if not first.valid_signature:
        return Status.BAD_SIGNATURE, "the signature does not verify with the issuer's key"
    for link in chain[1:]:
        if not link.valid_signature:
            return Status.UNTRUSTED, f"the certificate of {link.subject} does not verify"
    for link in chain:
        if not link.authorised:
            return Status.UNTRUSTED, f"the certificate of {link.issuer} does not cover this handle"
    for link in chain[1:]:
        if not link.in_time:
            return Status.UNTRUSTED, f"the certificate of {link.subject} is outside its validity window"
    time_status = _time_status(claims, now)
    if time_status != Status.VALID:
        return time_status, f"the signature is {time_status.value}"
    return Status.VALID, None


def _compare_digests(claims: dict[str, Any], handle: str, record: Sequence[HandleValue], report: SignatureReport) -> None:
    digests = claims.get("digests") if isinstance(claims.get("digests"), dict) else {}
    alg = str(digests.get("alg", "SHA-256"))
    entries = digests.get("digests")
    by_index = {v.index: v for v in record}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
            continue
        value = by_index.get(entry["index"])
        if value is None:
            report.missing.append(entry["index"])
            continue
        try:
            same = value_digest(value, alg) == entry.get("digest")
        except JwsError:
            same = False
        (report.verified if same else report.bad_digests).append(value.index)


def verification(
    handle: str, values: Sequence[HandleValue], anchor: TrustAnchor, now: int, memo: SignatureMemo | None = None
) -> Generator[str, Any, RecordReport]:
    """The verdict on every value of a record that needs a signature; yields handles to fetch."""
    parsed = Handle.parse(handle, max_length=10**6)
    fetched: dict[str, Any] = {}
    reports = []
    for value in values:
        if value.type_key == SIGNATURE:
            reports.append((yield from _check_signature(value, handle, values, anchor, now, fetched, memo)))
    verdicts: dict[int, Status] = {}
    for value in values:
        if not needs_signature(value, parsed):
            continue
        candidates = [Status.UNSIGNED]
        for report in reports:
            if value.index in report.bad_digests:
                candidates.append(Status.BAD_DIGEST)
            elif value.index in report.verified:
                candidates.append(report.status)
        verdicts[value.index] = min(candidates, key=_RANK.index)
    return RecordReport(handle, verdicts, reports)


def verify(handle: str, values: Sequence[HandleValue], anchor: TrustAnchor, now: int, fetch: Fetch) -> RecordReport:
    walk = verification(handle, values, anchor, now)
    try:
        wanted = next(walk)
        while True:
            wanted = walk.send(fetch(wanted))
    except StopIteration as done:
        return done.value


async def averify(handle: str, values: Sequence[HandleValue], anchor: TrustAnchor, now: int, fetch: AsyncFetch,
                  memo: SignatureMemo | None = None) -> RecordReport:
    walk = verification(handle, values, anchor, now, memo)
    try:
        wanted = next(walk)
        while True:
            wanted = walk.send(await fetch(wanted))
    except StopIteration as done:
        return done.value
