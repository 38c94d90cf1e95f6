"""One transaction that writes many records: their rows locked first, the new versions written with a
statement per kind of change, and one change-log call for all of them at the end.

Every batch chunk and every group of concurrent single writes reaches the store this way. Locking the
rows (``SELECT … FOR UPDATE``, in key order) makes writers of the same handle queue, in whichever
process they run, instead of failing on a version check. The log lock (``log_change_ops``) is taken
once per group, at its end, so the time every writer spends serialised is one commit per group rather
than one per record.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from ..errors import ConcurrentUpdate
from ..records import StoredRecord

OP_CREATE, OP_DELETE, OP_UPDATE = 1, 2, 3

_LOCK = (
    "SELECT handle, spelled, vals, public_json, min_ttl, expires_at, version, sig_expires FROM handles"
    " WHERE handle = ANY($1::text[]) ORDER BY handle FOR UPDATE"
)
_CREATE = """
INSERT INTO handles (handle, spelled, prefix, vals, public_json, min_ttl, expires_at, sig_expires)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::int[], $7::bigint[], $8::bigint[])
ON CONFLICT (handle) DO NOTHING RETURNING handle
"""
_UPDATE = """
UPDATE handles h SET vals = u.vals, public_json = u.public_json, min_ttl = u.min_ttl, expires_at = u.expires_at,
       sig_expires = u.sig_expires, version = h.version + 1, updated_at = now()
FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::int[], $5::bigint[], $6::bigint[])
     AS u(handle, vals, public_json, min_ttl, expires_at, sig_expires)
WHERE h.handle = u.handle RETURNING h.handle
"""
_DELETE = "DELETE FROM handles WHERE handle = ANY($1::text[]) RETURNING handle"
_LOG = "SELECT log_change_ops($1::text[], $2::smallint[])"


def _from_row(row: asyncpg.Record) -> StoredRecord:
    return StoredRecord(row["spelled"], row["vals"], row["public_json"], row["min_ttl"], row["expires_at"],
                        row["version"], sig_expires=row["sig_expires"])


@dataclass(frozen=True, slots=True)
class RowWrite:
    """The new state of one row: ``stored`` None deletes it; ``existed`` says whether it was there."""

    key: str
    prefix_key: str
    stored: StoredRecord | None
    existed: bool

    @property
    def op(self) -> int:
        if self.stored is None:
            return OP_DELETE
        return OP_UPDATE if self.existed else OP_CREATE


class WriteGroup:
    """The statements of one group transaction, on a connection whose transaction the caller holds."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @property
    def connection(self) -> asyncpg.Connection:
        """The group's connection, inside its transaction, for statements written with the records."""
        return self._conn

    async def lock(self, keys: list[str]) -> dict[str, StoredRecord]:
        """The current rows of ``keys`` (those that exist), locked until the transaction ends."""
        rows = await self._conn.fetch(_LOCK, keys)
        return {row["handle"]: _from_row(row) for row in rows}

    async def write(self, writes: list[RowWrite]) -> int | None:
        """Write every row and log the changes; the seq of the last change (None: nothing written).
        ConcurrentUpdate if a row to create appeared meanwhile (another transaction created it after
        ``lock``): the caller rolls back and starts again."""
        creates = [w for w in writes if w.stored is not None and not w.existed]
        updates = [w for w in writes if w.stored is not None and w.existed]
        deletes = [w.key for w in writes if w.stored is None]
        if creates:
            made = await self._conn.fetch(_CREATE, *_columns(creates, with_names=True))
            if len(made) != len(creates):
                raise ConcurrentUpdate("a handle being created was created by someone else meanwhile; try again")
        if updates:
            await self._conn.fetch(_UPDATE, *_columns(updates, with_names=False))
        if deletes:
            await self._conn.fetch(_DELETE, deletes)
        if not writes:
            return None
        return await self._conn.fetchval(_LOG, [w.key for w in writes], [w.op for w in writes])


def _columns(writes: list[RowWrite], *, with_names: bool) -> list[list]:
    stored = [w.stored for w in writes]
    data = [
        [s.vals for s in stored], [s.public_json for s in stored], [s.min_ttl for s in stored],  # type: ignore[union-attr]
        [s.expires_at for s in stored], [s.sig_expires for s in stored],  # type: ignore[union-attr]
    ]
    keys = [w.key for w in writes]
    if with_names:
        return [keys, [s.handle for s in stored], [w.prefix_key for w in writes], *data]  # type: ignore[union-attr]
    return [keys, *data]
