"""Sessions of Handle's challenge–response, kept in the store so that every process of a node knows them."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from .db import unavailable_on_driver_errors


@dataclass(frozen=True)
class SessionRow:
    id: str
    nonce: bytes
    identity: str | None
    expires_at: float  # epoch seconds


_COLUMNS = "id, nonce, identity, extract(epoch FROM expires_at)::float8 AS expires"


async def create(pool: asyncpg.Pool, session_id: str, nonce: bytes, lifetime: float) -> None:
    with unavailable_on_driver_errors():
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM sessions WHERE expires_at < now() - interval '1 hour'")
            await conn.execute("INSERT INTO sessions (id, nonce, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
                               session_id, nonce, lifetime)


async def get(pool: asyncpg.Pool, session_id: str) -> SessionRow | None:
    """The session, unless unknown or expired."""
    with unavailable_on_driver_errors():
        row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM sessions WHERE id = $1 AND expires_at > now()", session_id)
    return SessionRow(row["id"], row["nonce"], row["identity"], row["expires"]) if row is not None else None


async def authenticate(pool: asyncpg.Pool, session_id: str, identity: str, lifetime: float) -> bool:
    with unavailable_on_driver_errors():
        done = await pool.fetchval(
            "UPDATE sessions SET identity = $2, expires_at = now() + make_interval(secs => $3)"
            " WHERE id = $1 AND expires_at > now() RETURNING true", session_id, identity, lifetime)
    return bool(done)


async def touch(pool: asyncpg.Pool, session_id: str, lifetime: float) -> None:
    with unavailable_on_driver_errors():
        await pool.execute("UPDATE sessions SET expires_at = now() + make_interval(secs => $2) WHERE id = $1",
                           session_id, lifetime)


async def delete(pool: asyncpg.Pool, session_id: str) -> bool:
    with unavailable_on_driver_errors():
        return bool(await pool.fetchval("DELETE FROM sessions WHERE id = $1 AND expires_at > now() RETURNING true", session_id))
