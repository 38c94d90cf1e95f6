"""What the browser front says of a record's signatures: verified up to the trust root, failing, signed
but not checked (the node has no trust root), or unsigned. The verdict is kept with the cache entry."""

from __future__ import annotations

from registry.errors import IdresError
from registry.trust import averify
from registry.values import SIGNATURE

from ..resolution.engine import CachedRecord
from .context import NodeParts
from .pages import SignatureStatus

KEPT = "browser-signature"  # the key of the verdict in a cache entry's renderings


async def signature_status(node: NodeParts, entry: CachedRecord, text: str, now: int) -> SignatureStatus:
    """The verdict on the record's HS_SIGNATURE values, checked with ``registry.trust`` when the node has a trust root."""
    kept = entry.renderings.get(KEPT)
    if kept is None:
        kept = entry.renderings[KEPT] = await _verdict(node, entry, text, now)
    return kept


async def _verdict(node: NodeParts, entry: CachedRecord, text: str, now: int) -> SignatureStatus:
    record = entry.stored.record
    if not any(v.type_key == SIGNATURE and v.public_read for v in record.values):
        return SignatureStatus("unsigned", "Not signed: this record carries no HS_SIGNATURE.")
    if entry.relayed and entry.verified:
        return SignatureStatus("verified", f"Signed, and verified up to this node's trust root when it came from {entry.source}.")
    anchor = node.forwarder.upstream.anchor if node.forwarder is not None else None
    if anchor is None:
        return SignatureStatus("unchecked", "Signed (HS_SIGNATURE), but not checked: this node has no trust root configured "
                                            "(IDRES_TRUST_ROOT).")
    try:
        report = await averify(text, record.values, anchor, now, node.engine.chain_values)
    except IdresError as exc:
        return SignatureStatus("unchecked", f"Signed (HS_SIGNATURE), but the certificates to check it could not be fetched: {exc.message}")
    if report.ok:
        issuers = ", ".join(sorted({s.issuer for s in report.signatures}))
        return SignatureStatus("verified", f"Signed by {issuers}, and verified up to this node's trust root.")
    return SignatureStatus("failed", f"Signed, but the signature does not verify: {report.problem()}.")
