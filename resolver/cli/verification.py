"""Checking a record's signatures as a client does: resolve over HTTP, fetch the chain, report per value."""

from __future__ import annotations

from typing import Any, Sequence

from registry.errors import ConfigurationError, IdresError
from registry.jws import JwsError, PublicKey, load_public_key
from registry.model import HandleValue
from registry.trust import RecordReport, Status
from registry.value_json import parse_values_body

from .client import HandleClient


def load_root_key(data: bytes) -> PublicKey:
    """A trust root's public key, as PEM or JWK."""
    try:
        return load_public_key(data)[0]
    except JwsError as exc:
        raise ConfigurationError(f"the root key is neither a PEM public key nor a JWK: {exc.message}") from None


def values_of(body: Any) -> list[HandleValue]:
    """Handle values from a resolution answer (their timestamps are not needed to check digests)."""
    values, _ = parse_values_body({"values": body.get("values", [])})
    return values


class NodeFetcher:
    """Resolves handles by asking each node in turn; the first that has the record answers."""

    def __init__(self, clients: Sequence[HandleClient]) -> None:
        self.clients = list(clients)
        self.asked: list[str] = []

    def record(self, handle: str) -> list[HandleValue] | None:
        self.asked.append(handle)
        for client in self.clients:
            reply = client.request("GET", client.handle_path(handle))
            if reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("responseCode") == 1:
                try:
                    return values_of(reply.body)
                except IdresError:
                    continue
        return None


def report_json(report: RecordReport, types: dict[int, str]) -> dict[str, Any]:
    return {
        "handle": report.handle,
        "ok": report.ok,
        "values": [{"index": i, "type": types.get(i, ""), "status": s.value} for i, s in sorted(report.values.items())],
        "signatures": [
            {
                "index": r.index,
                "issuer": r.issuer,
                "status": r.status.value,
                "problem": r.problem,
                "chain": [link.issuer for link in r.chain],
                "missing": r.missing,
            }
            for r in report.signatures
        ],
    }


def report_text(report: RecordReport, types: dict[int, str]) -> str:
    lines = [f"{report.handle}: {'all values signed and valid' if report.ok else 'NOT fully verified'}"]
    for index, status in sorted(report.values.items()):
        mark = "ok " if status == Status.VALID else "!! "
        lines.append(f"  {mark}{index:>6}  {types.get(index, ''):<20} {status.value}")
    for sig in report.signatures:
        chain = " <- ".join(link.issuer for link in sig.chain) or "-"
        lines.append(f"  signature {sig.index} by {sig.issuer or '?'}: {sig.status.value}; chain: {chain}")
        if sig.problem:
            lines.append(f"    {sig.problem}")
        if sig.missing:
            lines.append(f"    signed values absent from the answer: {', '.join(map(str, sig.missing))}")
    return "\n".join(lines)
