"""What a batch sent with an Idempotency-Key leaves behind: its body's hash and each chunk's results.

A chunk's results are written in the chunk's own transaction (``claim`` first, ``record`` last), so
they exist exactly when the chunk's writes were committed. Two runs of the same batch at once cannot
both apply a chunk: the second waits on the first's claim and, once it commits, finds it taken.
"""

from __future__ import annotations

import asyncpg

from .db import unavailable_on_driver_errors
from ..errors import IdempotencyKeyReused

_OPEN = """
INSERT INTO batches (key, body_hash, chunk_size, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (key) DO UPDATE SET body_hash = EXCLUDED.body_hash, chunk_size = EXCLUDED.chunk_size,
                                expires_at = EXCLUDED.expires_at
    WHERE batches.expires_at < now()
"""


class ChunkTaken(Exception):
    """Another run of the batch committed this chunk first."""


async def open_batch(pool: asyncpg.Pool, key: str, body_hash: bytes, chunk_size: int, ttl: int) -> int:
    """Record the batch (or find it recorded by an earlier run); returns its chunk size.
    IdempotencyKeyReused if the key was used with another body and has not expired."""
    with unavailable_on_driver_errors():
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM batches WHERE expires_at < now() - interval '1 minute'")
            await conn.execute(_OPEN, key, body_hash, chunk_size, float(ttl))
            row = await conn.fetchrow("SELECT body_hash, chunk_size FROM batches WHERE key = $1", key)
    if row["body_hash"] != body_hash:
        raise IdempotencyKeyReused("this Idempotency-Key was used with another request body; use a new key for a new batch")
    return row["chunk_size"]


async def results_of(pool: asyncpg.Pool, key: str, chunk: int) -> bytes | None:
    """The results an earlier run committed for this chunk, or None."""
    with unavailable_on_driver_errors():
        return await pool.fetchval("SELECT results FROM batch_chunks WHERE key = $1 AND chunk = $2", key, chunk)


async def claim(conn: asyncpg.Connection, key: str, chunk: int) -> None:
    """Take the chunk in the caller's transaction; ChunkTaken if another run committed it."""
    try:
        async with conn.transaction():  # a savepoint: the claim's failure leaves the transaction usable
            await conn.execute("INSERT INTO batch_chunks (key, chunk, results) VALUES ($1, $2, '')", key, chunk)
    except asyncpg.UniqueViolationError:
        raise ChunkTaken(key, chunk) from None


async def record(conn: asyncpg.Connection, key: str, chunk: int, results: bytes) -> None:
    await conn.execute("UPDATE batch_chunks SET results = $3 WHERE key = $1 AND chunk = $2", key, chunk, results)
