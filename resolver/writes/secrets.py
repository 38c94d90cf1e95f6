"""HS_SECKEY values still in clear (written before keys were hashed) turned into their hashed form:
one at its first use, or all of them at once (``idres admin hash-secrets``)."""

from __future__ import annotations

from dataclasses import replace

from registry.model import Handle, HandleValue, ValueRef
from registry.pg.groups import RowWrite
from registry.pg.store import Store
from registry.values import SECKEY

from ..core import seckeys
from ..core.retry import retry_on_conflict
from ..core.seckeys import SecretHasher


async def hash_clear_secret(store: Store, hasher: SecretHasher, ref: ValueRef, value: HandleValue, secret: bytes) -> bool:
    """Replace the clear HS_SECKEY at ``ref`` (still holding ``value``'s data) by its hash; False if it changed."""
    handle = Handle.parse(ref.handle, max_length=10**6)

    async def attempt() -> bool:
        async with store.group() as group:
            stored = (await group.lock([handle.key])).get(handle.key)
            current = stored.record.value_at(ref.index) if stored is not None else None
            if stored is None or current is None or current.data != value.data:
                return False
            hashed = replace(current, data=hasher.hash(secret))
            record = stored.record.with_values(hashed if v.index == ref.index else v for v in stored.record.values)
            await group.write([RowWrite(handle.key, handle.prefix_key, store.sealed(record), True)])
            return True

    return await retry_on_conflict(attempt)


async def hash_all_clear_secrets(store: Store, hasher: SecretHasher, batch: int = 500) -> int:
    """Hash every HS_SECKEY value stored in clear; returns how many were hashed."""
    hashed, after = 0, ""
    while True:
        keys = await store.keys_with_type(SECKEY, after, batch)
        if not keys:
            return hashed
        for key in keys:
            hashed += await _hash_record(store, hasher, key)
        after = keys[-1]


async def _hash_record(store: Store, hasher: SecretHasher, key: str) -> int:
    async def attempt() -> int:
        async with store.group() as group:
            stored = (await group.lock([key])).get(key)
            if stored is None or not seckeys.has_clear_secret(stored.record.values):
                return 0
            record = stored.record
            count = sum(1 for v in record.values if v.type_key == SECKEY and not seckeys.is_hashed(v.data))
            sealed = record.with_values(hasher.seal(None, record.values))
            await group.write([RowWrite(key, record.handle.prefix_key, store.sealed(sealed), True)])
            return count

    return await retry_on_conflict(attempt)
