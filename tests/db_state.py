"""What a database holds, to show that a refused request wrote nothing."""

from __future__ import annotations

from registry.pg import db


async def snapshot(dsn: str) -> tuple:
    """Every handle row, every homed prefix and the change log, as comparable tuples."""
    async with db.connection(dsn) as conn:
        handles = await conn.fetch("SELECT handle, spelled, vals, public_json, version FROM handles ORDER BY handle")
        prefixes = await conn.fetch("SELECT prefix, spelled FROM prefixes ORDER BY prefix")
        changes = await conn.fetch("SELECT seq, handle, op FROM changes ORDER BY seq")
    return (
        [tuple(r) for r in handles],
        [tuple(r) for r in prefixes],
        [tuple(r) for r in changes],
    )
