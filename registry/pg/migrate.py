"""Numbered SQL migrations, applied in order under an advisory lock, and the schema check.

``registry/pg/migrations/NNNN_name.sql`` files are applied each in its own transaction and recorded in
``idres.schema_migrations``. A node refuses to serve a schema that is behind or ahead of the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from .db import SCHEMA
from ..errors import SchemaMismatch

MIGRATION_LOCK = 7310020
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("registry.pg.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise SchemaMismatch(f"migrations are not numbered 1..n without gaps: {versions}")
    return found


def latest_version() -> int:
    return available()[-1].version


async def current_version(conn: asyncpg.Connection) -> int:
    """The schema version of the database; 0 when idres has never been installed there."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{SCHEMA}.schema_migrations")
    if not exists:
        return 0
    return await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_migrations")


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Apply every pending migration; returns those applied. Safe to run from several processes."""
    applied = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            f"CREATE SCHEMA IF NOT EXISTS {SCHEMA};"
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = await current_version(conn)
        migrations = available()
        if current > migrations[-1].version:
            raise _ahead(current, migrations[-1].version)
        for migration in migrations:
            if migration.version <= current:
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {SCHEMA}")
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {SCHEMA}.schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


def _ahead(current: int, latest: int) -> SchemaMismatch:
    return SchemaMismatch(
        f"the database schema is at version {current:04d}, newer than this idres knows ({latest:04d}); "
        "it was migrated by a newer idres: upgrade idres before serving this database"
    )


async def check_schema(conn: asyncpg.Connection) -> int:
    """Raise SchemaMismatch, saying what to run, unless the schema is exactly the latest version."""
    current, latest = await current_version(conn), latest_version()
    if current == 0:
        raise SchemaMismatch("the database has no idres schema: run `idres migrate` to create it")
    if current < latest:
        raise SchemaMismatch(
            f"the database schema is at version {current:04d} but this idres needs {latest:04d}: "
            "run `idres migrate` (with the same --dsn or --data-dir) and start again"
        )
    if current > latest:
        raise _ahead(current, latest)
    return current
