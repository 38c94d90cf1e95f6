"""The node's keys on its prefix records: HS_PUBKEY values, the key in its HS_SITE, the first key.

Each key is published at its own index on every homed prefix record. The index is chosen free on all
of them when the key is made, and publishing never overwrites a value it did not publish: a clash is
reported for the operator to resolve. The node's keys are recognised in either HS_PUBKEY layout (RSA
with or without Handle.Net's trailing ``int4 0``) and always published in Handle.Net's, so a record
written in the old layout is brought to the new one, and signed again, the next time keys are published. All processes of a node share one keys directory; a process
whose keys directory is empty refuses to make a key of its own when the prefix records already name
another node key, rather than sign with a key nobody certified.
"""

from __future__ import annotations

from dataclasses import replace

from registry.errors import ConfigurationError, IdresError
from registry.model import HandleValue, Record, prefix_record_handle
from registry.pg.store import Store
from registry.pubkeys import canonical_pubkey
from registry.values import PUBKEY, SITE_TYPES, SiteInfo

from ..core.retry import retry_on_conflict
from .keyring import FIRST_INDEX, Keyring
from .site import SiteDescription, active_key_bytes, key_bytes


async def _prefix_records(store: Store) -> list[tuple[Record, int]]:
    found = []
    for prefix in await store.homed_prefixes():
        stored = await store.get(prefix_record_handle(prefix).key)
        if stored is not None:
            found.append((stored.record, stored.version))
    return found


def _ours(keyring: Keyring) -> set[bytes]:
    """The node's keys in the Handle.Net layout (compare ``canonical_pubkey`` of key bytes with them)."""
    return {key_bytes(keyring, e.kid) for e in keyring.entries}


def _is_ours(data: bytes, ours: set[bytes]) -> bool:
    """Whether HS_PUBKEY or server key bytes, in either layout, hold one of the node's keys."""
    return bool(data) and canonical_pubkey(data) in ours


async def free_key_index(store: Store, keyring: Keyring) -> int:
    """The next key index that no homed prefix record uses for anything but this node's own keys."""
    index = max((e.index for e in keyring.entries), default=FIRST_INDEX - 1) + 1
    ours = _ours(keyring)
    taken = {v.index for record, _ in await _prefix_records(store) for v in record.values
             if not (v.type_key == PUBKEY and _is_ours(v.data, ours))}
    while index in taken:
        index += 1
    return index


async def first_key(store: Store, keyring: Keyring, algorithm: str, now: int) -> None:
    """Make the node's first key, unless the prefix records say another key signs for this database."""
    if keyring.entries:
        return
    for record, _ in await _prefix_records(store):
        for value in record.values:
            if value.type_key in SITE_TYPES and _site_keys(value) - {b""}:
                raise ConfigurationError(
                    f"{record.handle.text} already names a signing key of this node, and {keyring.directory} holds no "
                    "keys: every process of a node must use the node's keys directory (--keys-dir, IDRES_KEYS_DIR)"
                )
    keyring.generate(algorithm, now, index=await free_key_index(store, keyring))


def _site_keys(value: HandleValue) -> set[bytes]:
    try:
        return {s.public_key for s in SiteInfo.from_bytes(value.data).servers}
    except IdresError:
        return set()


def key_values(keyring: Keyring, now: int, lifetime: int) -> list[HandleValue]:
    """The HS_PUBKEY values the prefix records carry: every key not retired longer than a signature lives."""
    return [HandleValue(e.index, PUBKEY, key_bytes(keyring, e.kid), timestamp=now) for e in keyring.published(now, lifetime)]


def prefix_record(site: SiteDescription, keyring: Keyring | None, prefix: str, now: int, lifetime: int) -> Record:
    """The record ``0.NA/<prefix>`` starts with: this node's HS_SITE and the HS_PUBKEY of its keys."""
    record = site.prefix_record(prefix, now)
    keys = key_values(keyring, now, lifetime) if keyring is not None else []
    return record.with_values([*record.values, *keys])


def _republished(record: Record, keyring: Keyring, wanted: dict[int, HandleValue], now: int) -> list[HandleValue]:
    """The record's values with this node's keys as ``wanted``; ConfigurationError on a clash."""
    ours, active = _ours(keyring), active_key_bytes(keyring)
    values = []
    for value in record.values:
        mine = value.type_key == PUBKEY and _is_ours(value.data, ours)
        if value.index in wanted and not mine:
            raise ConfigurationError(
                f"{record.handle.text} has a {value.type} value at index {value.index}, where this node publishes "
                f"a key: move that value, or make a key at another index"
            )
        if not mine:
            values.append(_with_site_key(value, ours, active, now))
    return values + list(wanted.values())


async def publish_keys(store: Store, keyring: Keyring, now: int, lifetime: int) -> int:
    """Bring every homed prefix record in line with the keyring: HS_PUBKEY values of the published keys,
    and the active key in HS_SITE values that describe this node; returns how many records changed."""
    wanted = {v.index: v for v in key_values(keyring, now, lifetime)}
    changed = 0
    for prefix in await store.homed_prefixes():
        handle = prefix_record_handle(prefix)

        async def attempt() -> bool:
            stored = await store.get(handle.key)
            if stored is None:
                return False
            new_values = _republished(stored.record, keyring, wanted, now)
            if {(v.index, v.type, v.data) for v in new_values} == {(v.index, v.type, v.data) for v in stored.record.values}:
                return False
            await store.replace(stored.record.with_values(new_values), stored.version)
            return True

        changed += await retry_on_conflict(attempt, gave_up=f"{handle.text} kept changing; run the command again")
    return changed


def _with_site_key(value: HandleValue, our_keys: set[bytes], active: bytes, now: int) -> HandleValue:
    """An HS_SITE value whose servers carry one of this node's keys, with the active key instead."""
    if value.type_key not in SITE_TYPES or not active:
        return value
    try:
        site = SiteInfo.from_bytes(value.data)
    except IdresError:
        return value
    servers = tuple(replace(s, public_key=active) if _is_ours(s.public_key, our_keys) else s for s in site.servers)
    if servers == site.servers:
        return value
    return replace(value, data=replace(site, servers=servers).to_bytes(), timestamp=now)
