"""The node's signing keys on disk: ``<keys dir>/<kid>.pem`` (mode 0600) and ``keyring.json``.

A key is *active* (signs every record version), *pending* (published as HS_PUBKEY so the parent can
certify it, not yet signing) or *retired* (no longer signing, still published until the signatures
it made have expired). Each key has the HS_PUBKEY index it is published at on every homed prefix
record; the node signs handles under prefix P as ``<index>:0.NA/P``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from registry.errors import ConfigurationError
from registry.jws import PrivateKey, PublicKey, algorithm_for, thumbprint

FIRST_INDEX = 300
ALGORITHMS = {"ed25519": "EdDSA", "rsa": "RS256"}
ACTIVE, PENDING, RETIRED = "active", "pending", "retired"


@dataclass(frozen=True)
class KeyEntry:
    kid: str
    alg: str
    index: int
    state: str
    created: int
    retired: int | None = None


def new_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ConfigurationError(f"key algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")


class Keyring:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self.entries: list[KeyEntry] = []
        self._keys: dict[str, PrivateKey] = {}
        self._mtime: float | None = None
        self.generation = 0  # bumped whenever the keys may have changed
        self.reload()

    @property
    def _index_file(self) -> Path:
        return self.directory / "keyring.json"

    def reload(self) -> None:
        self.generation += 1
        try:
            stat = self._index_file.stat()
        except FileNotFoundError:
            self.entries, self._keys, self._mtime = [], {}, None
            return
        data = json.loads(self._index_file.read_text())
        self.entries = [KeyEntry(**e) for e in data.get("keys", [])]
        self._keys = {}
        self._mtime = stat.st_mtime_ns

    def reload_if_changed(self) -> bool:
        """Pick up changes made by ``idres keys`` while the node runs; True if something changed."""
        try:
            mtime = self._index_file.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime == self._mtime:
            return False
        self.reload()
        return True

    def _save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._index_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": [asdict(e) for e in self.entries]}, indent=2) + "\n")
        os.replace(tmp, self._index_file)
        self._mtime = self._index_file.stat().st_mtime_ns
        self.generation += 1

    def private_key(self, kid: str) -> PrivateKey:
        if kid not in self._keys:
            path = self.directory / f"{kid}.pem"
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot read signing key {path}: {exc}") from exc
            self._keys[kid] = key  # type: ignore[assignment]
        return self._keys[kid]

    def public_key(self, kid: str) -> PublicKey:
        return self.private_key(kid).public_key()  # type: ignore[return-value]

    @property
    def active(self) -> KeyEntry | None:
        return next((e for e in self.entries if e.state == ACTIVE), None)

    def published(self, now: int, lifetime: int) -> list[KeyEntry]:
        """Keys whose HS_PUBKEY belongs on the prefix records: not retired longer than a signature lives."""
        return [e for e in self.entries if e.state != RETIRED or (e.retired or 0) + lifetime > now]

    def generate(self, algorithm: str, now: int, index: int | None = None) -> KeyEntry:
        """A new key: active if there is none, else pending until ``rotate``; published at ``index``
        (default: after the keyring's last)."""
        key = new_private_key(algorithm)
        kid = thumbprint(key)
        if index is None:
            index = max((e.index for e in self.entries), default=FIRST_INDEX - 1) + 1
        entry = KeyEntry(kid, algorithm_for(key), index, PENDING if self.active else ACTIVE, now)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{kid}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.entries.append(entry)
        self._keys[kid] = key
        self._save()
        return entry

    def rotate(self, now: int, kid: str | None = None) -> tuple[KeyEntry, KeyEntry | None]:
        """Make ``kid`` (default: the newest pending key) active; the active key retires. (new, old)."""
        pending = [e for e in self.entries if e.state == PENDING and (kid is None or e.kid == kid)]
        if not pending:
            raise ConfigurationError(f"no pending key {kid or ''} to rotate to: run `idres keys generate` first".replace("  ", " "))
        new = max(pending, key=lambda e: e.index)
        old = self.active
        self.entries = [
            replace(e, state=ACTIVE) if e.kid == new.kid else replace(e, state=RETIRED, retired=now) if old and e.kid == old.kid else e
            for e in self.entries
        ]
        self._save()
        return replace(new, state=ACTIVE), old
