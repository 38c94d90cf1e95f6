"""Signing every record version this node writes: the active key, as the identity of the covering prefix."""

from __future__ import annotations

from registry.model import Handle, Record, ValueRef
from registry.signing import RecordSigner

from ..core.authority import CurrentAuthority
from .keyring import Keyring


class NodeSealer:
    """The store's sealer: HS_SIGNATURE by ``<key index>:0.NA/<prefix>`` for handles under homed prefixes."""

    def __init__(self, keyring: Keyring, authority: CurrentAuthority, lifetime: int) -> None:
        self.keyring = keyring
        self.authority = authority
        self.lifetime = lifetime
        self.sealed = 0  # record versions signed: for metrics

    def identity_for(self, handle: Handle) -> ValueRef | None:
        active = self.keyring.active
        prefix = self.authority.snapshot.covering(handle)
        if active is None or prefix is None:
            return None
        return ValueRef(active.index, f"0.NA/{prefix}")

    def seal(self, record: Record, now: int) -> Record:
        self.keyring.reload_if_changed()  # a rotation by `idres keys rotate` takes effect at the next write
        active = self.keyring.active
        if active is None:
            return record
        signer = RecordSigner(self.keyring.private_key(active.kid), self.identity_for, lifetime=self.lifetime)
        self.sealed += 1
        return signer.seal(record, now)
