"""HS_SECKEY values kept hashed: PBKDF2-HMAC-SHA1 in Handle.Net's encoding, never the secret in clear.

The stored data is the byte 0x22 (Handle.Net's hash code for PBKDF2-HMAC-SHA1) followed by
Handle.Net's PBKDF2 encoding (``Util.constructPbkdf2Encoding``): the salt (int4 length, bytes), the
iteration count (int4), the key length in bits (int4, 160) and the derived key (int4 length, bytes).
A secret checks out if PBKDF2 of it with that salt and count gives that key. The same derived key
answers Handle's ``PBKDF2-HMAC-SHA1`` challenge (HMAC-SHA1 keyed with it over nonce‖cnonce) when a
client uses the value's salt and count, so challenge–response with a secret key needs no clear secret.

As Java's ``PBEKeySpec`` does for Handle.Net, each byte of the secret is taken as one character and the
characters are UTF-8 encoded before derivation (the same bytes for ASCII secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from registry.model import HandleValue, Record
from registry.values import SECKEY

HASH_CODE = 0x22
KEY_BITS = 160
SALT_BYTES = 16
_MIN_SALT, _MAX_SALT = 8, 64
_MAX_ITERATIONS = 10_000_000


@dataclass(frozen=True, slots=True)
class Pbkdf2:
    salt: bytes
    iterations: int
    key: bytes

    def encode(self) -> bytes:
        return (bytes([HASH_CODE]) + struct.pack(">I", len(self.salt)) + self.salt
                + struct.pack(">II", self.iterations, KEY_BITS) + struct.pack(">I", len(self.key)) + self.key)

    def matches(self, secret: bytes) -> bool:
        return hmac.compare_digest(derive(secret, self.salt, self.iterations), self.key)


def derive(secret: bytes, salt: bytes, iterations: int, bits: int = KEY_BITS) -> bytes:
    """PBKDF2-HMAC-SHA1 as Handle.Net computes it (``Util.doPBKDF2``)."""
    return hashlib.pbkdf2_hmac("sha1", secret.decode("latin-1").encode("utf-8"), salt, iterations, bits // 8)


def parse(data: bytes) -> Pbkdf2 | None:
    """The hashed form in ``data``, or None when the data is a secret in clear."""
    if len(data) < 1 + 4 + _MIN_SALT + 12 + 20 or data[0] != HASH_CODE:
        return None
    (salt_len,) = struct.unpack_from(">I", data, 1)
    if not _MIN_SALT <= salt_len <= _MAX_SALT or len(data) != 1 + 4 + salt_len + 12 + 20:
        return None
    salt = data[5:5 + salt_len]
    iterations, bits, key_len = struct.unpack_from(">III", data, 5 + salt_len)
    if bits != KEY_BITS or key_len != 20 or not 1 <= iterations <= _MAX_ITERATIONS:
        return None
    return Pbkdf2(salt, iterations, data[-20:])


def is_hashed(data: bytes) -> bool:
    return parse(data) is not None


def matches(stored: bytes, secret: bytes) -> bool:
    """Whether ``secret`` is the one ``stored`` holds (hashed, or in clear for values not yet migrated)."""
    hashed = parse(stored)
    if hashed is None:
        return hmac.compare_digest(stored, secret)
    return hashed.matches(secret)


class SecretHasher:
    """Turns HS_SECKEY values written in clear into their hashed form."""

    def __init__(self, iterations: int = 100_000) -> None:
        self.iterations = iterations

    def hash(self, secret: bytes) -> bytes:
        salt = secrets.token_bytes(SALT_BYTES)
        return Pbkdf2(salt, self.iterations, derive(secret, salt, self.iterations)).encode()

    def seal(self, old: Record | None, values: Iterable[HandleValue]) -> list[HandleValue]:
        """``values`` with every HS_SECKEY in clear hashed; a secret equal to the one already stored at
        its index keeps the stored hash, so that writing the same record again changes nothing."""
        out = []
        for value in values:
            if value.type_key != SECKEY or is_hashed(value.data):
                out.append(value)
                continue
            before = old.value_at(value.index) if old is not None else None
            if before is not None and before.type_key == SECKEY and matches(before.data, value.data):
                out.append(replace(value, data=before.data if is_hashed(before.data) else self.hash(value.data)))
            else:
                out.append(replace(value, data=self.hash(value.data)))
        return out


def has_clear_secret(values: Sequence[HandleValue]) -> bool:
    return any(v.type_key == SECKEY and not is_hashed(v.data) for v in values)

