"""What a mirror checks before it applies a record: that it belongs to the mirrored prefix, and — with a
trust root — that its signatures verify up to that root (``registry.trust``), or that it came in a
chunk the origin sealed.

The certificates a chain needs are looked up in the records at hand (a prefix record travels with its
prefix) and then asked of the origin, unverified: the chain's own signatures are what is checked, and
the check of each certificate is remembered (``SignatureMemo``), so that every record of a prefix costs
one signature check of its own. A certificate record that cannot be fetched (the origin, or the node it
asks, unreachable) is not a reason to reject anything: the page or chunk is asked for again later.
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable, Mapping, Sequence

from registry.errors import IdresError, UpstreamUnavailable
from registry.model import Handle, HandleValue, fold
from registry.pg.feed import RecordRow, in_scope
from registry.records import StoredRecord
from registry.trust import SignatureMemo, TrustAnchor, averify

from . import seals
from .wire import ChunkInfo

log = logging.getLogger(__name__)
CERTIFICATE_TTL = 300.0
CERTIFICATE_RECORDS = 1000

Verdict = tuple[RecordRow | None, str | None]  # (the row to apply, None) or (None, why it is refused)
RemoteRecord = Callable[[Handle], Awaitable["Sequence[HandleValue] | None"]]


def decoded(row: RecordRow) -> StoredRecord:
    return StoredRecord(row.spelled, row.vals, row.public_json, row.min_ttl, row.expires_at, 1, sig_expires=row.sig_expires)


def rederived(row: RecordRow, stored: StoredRecord) -> RecordRow:
    """The row with what derives from its values computed here, its encoded values kept byte for byte."""
    mine = StoredRecord.from_record(stored.record)
    return RecordRow(row.key, row.spelled, row.vals, mine.public_json, mine.min_ttl, mine.expires_at, mine.sig_expires)


class RecordChecks:
    """The checks of one mirror: ``prefix`` (comparison key), its trust anchor (None: nothing is verified)."""

    def __init__(self, prefix: str, anchor: TrustAnchor | None, remote: RemoteRecord, *, seals_suffice: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.prefix = prefix
        self.anchor = anchor
        self.seals_suffice = seals_suffice
        self._remote = remote
        self._clock = clock
        self._memo = SignatureMemo()
        self._certificates: dict[str, tuple[float, Sequence[HandleValue] | None]] = {}
        self._seal_problem: str | None = None

    def in_scope(self, key: str) -> bool:
        return in_scope(key, (self.prefix,))

    def _fetcher(self, batch: Mapping[str, RecordRow]) -> Callable[[str], Awaitable["Sequence[HandleValue] | None"]]:
        async def fetch(text: str) -> Sequence[HandleValue] | None:
            key = fold(text)
            if key in batch:
                try:
                    return decoded(batch[key]).record.values
                except IdresError:
                    return None
            return await self._certificate(text, key)

        return fetch

    async def _certificate(self, text: str, key: str) -> Sequence[HandleValue] | None:
        now = self._clock()
        cached = self._certificates.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            values = await self._remote(Handle.parse(text, max_length=10**4))
        except IdresError as exc:  # not the record's fault: the page is asked for again later, nothing is rejected
            raise UpstreamUnavailable(f"the certificate record {text} could not be fetched to verify records: {exc.message}") from None
        if len(self._certificates) >= CERTIFICATE_RECORDS:
            self._certificates.clear()
        self._certificates[key] = (now + CERTIFICATE_TTL, values)
        return values

    async def record(self, row: RecordRow, batch: Mapping[str, RecordRow]) -> Verdict:
        """(the row to apply, None), or (None, why it is refused)."""
        if not self.in_scope(row.key):
            return None, f"{row.spelled} is not under {self.prefix}"
        if self.anchor is None:
            return row, None
        try:
            stored = decoded(row)
            values = stored.record.values
        except IdresError as exc:
            return None, exc.message
        report = await averify(row.spelled, values, self.anchor, int(self._clock()), self._fetcher(batch), self._memo)
        if not report.ok and (report.values or report.signatures):
            return None, report.problem()
        return rederived(row, stored), None

    async def chunk(self, chunk: ChunkInfo, cursor: int, rows: Sequence[RecordRow]) -> tuple[list[Verdict], bool]:
        """The verdict on each row of a snapshot chunk, and whether its seal vouched for them all at once (else
        they were checked one by one)."""
        batch = {row.key: row for row in rows}
        if self.anchor is not None and self.seals_suffice and chunk.seal is not None and chunk.prefix == self.prefix:
            problem = await seals.check(chunk, cursor, self.anchor, int(self._clock()), self._fetcher(batch), self._memo)
            if problem is None:
                return [(row, None) if self.in_scope(row.key) else (None, f"{row.spelled} is not under {self.prefix}")
                        for row in rows], True
            if self._seal_problem != problem:
                log.warning("the seal of chunk %d of %s does not verify (%s): checking its records one by one",
                            chunk.number, self.prefix, problem)
                self._seal_problem = problem
        return [await self.record(row, batch) for row in rows], False
