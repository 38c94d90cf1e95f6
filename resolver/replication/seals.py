"""Seals: the origin's signature over each chunk of a snapshot, so that a mirror checks one signature per
chunk instead of one per record.

A seal is an HS_SIGNATURE, in the format of every record signature (``registry.signing``), made by the
node's active key as the identity of the prefix (``<index>:0.NA/<prefix>``), over a record that exists
only on the wire: ``<prefix>/../snapshot-chunk`` (a name the identifier policy refuses for real
handles, and that URL-normalising clients cannot even ask for, so that a seal can never pass for the
signature of a record anyone resolves) with one value, ``IDRES_SNAPSHOT_CHUNK``, whose data names the
snapshot's cursor, the chunk's number and size and the SHA-256 of its record lines. A mirror rebuilds
that record from what it received and verifies it with ``registry.trust`` up to its trust root, as it
would verify any record of the prefix: a valid seal proves that a key certified for the prefix vouched
for exactly these bytes, in this place of this snapshot. Only a node that homes the prefix seals it
(another node's key is not certified for it); a chunk without a valid seal is checked record by record.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Protocol, Sequence

from registry.model import Handle, HandleValue, Record
from registry.trust import SignatureMemo, TrustAnchor, averify
from registry.values import SIGNATURE

from .wire import ChunkInfo

CHUNK_TYPE = "IDRES_SNAPSHOT_CHUNK"
CHUNK_SUFFIX = "../snapshot-chunk"
SEAL_INDEX = 400

Fetch = Callable[[str], Awaitable["Sequence[HandleValue] | None"]]


class Sealer(Protocol):
    def seal(self, record: Record, now: int) -> Record: ...


def _chunk_record(chunk: ChunkInfo, cursor: int) -> Record:
    handle = Handle.parse(f"{chunk.prefix}/{CHUNK_SUFFIX}", max_length=10**4)
    return Record(handle, (HandleValue(1, CHUNK_TYPE, chunk.sealed_data(cursor)),))


def seal(sealer: Sealer | None, chunk: ChunkInfo, cursor: int, now: int) -> str | None:
    """The seal of a chunk, or None when this node does not sign for the chunk's prefix."""
    if sealer is None:
        return None
    sealed = sealer.seal(_chunk_record(chunk, cursor), now)
    signatures = [v for v in sealed.values if v.type_key == SIGNATURE]
    return signatures[0].data.decode("ascii") if signatures else None


async def check(chunk: ChunkInfo, cursor: int, anchor: TrustAnchor, now: int, fetch: Fetch, memo: SignatureMemo) -> str | None:
    """None when the chunk's seal verifies up to the trust root; otherwise why not."""
    if chunk.seal is None:
        return "the chunk is not sealed"
    record = _chunk_record(chunk, cursor)
    values = [*record.values, HandleValue(SEAL_INDEX, SIGNATURE, chunk.seal.encode("ascii"))]
    report = await averify(record.handle.text, values, anchor, now, fetch, memo)
    if report.ok:
        return None
    problems = [s.problem for s in report.signatures if s.problem]
    return problems[0] if problems else "the seal does not cover the chunk"
