"""Signing every record version this node writes: the active key, as the identity of the covering prefix."""

from __future__ import annotations

import contextlib
from typing import Iterator

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
        self._signer: tuple[str, int, RecordSigner] | None = None
        self._held = 0

    def identity_for(self, handle: Handle) -> ValueRef | None:
        active = self.keyring.active
        prefix = self.authority.snapshot.covering(handle)
        if active is None or prefix is None:
            return None
        return ValueRef(active.index, f"0.NA/{prefix}")

    def seal(self, record: Record, now: int) -> Record:
        if not self._held:
            self.keyring.reload_if_changed()  # a rotation by `idres keys rotate` takes effect at the next write
        active = self.keyring.active
        if active is None:
            return record
        cached = self._signer
        if cached is None or cached[:2] != (active.kid, self.keyring.generation):
            signer = RecordSigner(self.keyring.private_key(active.kid), self.identity_for, lifetime=self.lifetime)
            self._signer = cached = (active.kid, self.keyring.generation, signer)
        self.sealed += 1
        return cached[2].seal(record, now)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Seal many records with the key in force now: the keys directory is looked at once, not per record."""
        self.keyring.reload_if_changed()
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
