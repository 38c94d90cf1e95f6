"""Migrations and the schema check (registry/migrate.py) against real databases."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from registry.pg import db, migrate as migrate_module
from registry.errors import SchemaMismatch
from registry.pg.migrate import MIGRATION_LOCK, Migration, available, check_schema, current_version, latest_version, migrate


async def recorded(conn: asyncpg.Connection) -> list[tuple[int, str]]:
    return [tuple(r) for r in await conn.fetch("SELECT version, name FROM idres.schema_migrations ORDER BY version")]


async def tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'idres'")
    return {r["tablename"] for r in rows}


async def until(condition, message: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.005)  # poll interval


def test_available_migrations_are_numbered_from_one():
    found = available()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert found[0].name == "initial" and "CREATE TABLE handles" in found[0].sql
    assert latest_version() == found[-1].version


async def test_migrate_on_an_empty_database_applies_everything_once(empty_dsn):
    async with db.connection(empty_dsn) as conn:
        assert await current_version(conn) == 0
        applied = await migrate(conn)
        assert applied == available()
        assert await current_version(conn) == latest_version()
        assert await check_schema(conn) == latest_version()
        assert await recorded(conn) == [(m.version, m.name) for m in available()]
        assert {"schema_migrations", "handles", "prefixes", "changes"} <= await tables(conn)
        # the schema works: a change can be logged
        seq = await conn.fetchval("SELECT idres.log_change('88.101/X', 1::smallint)")
        assert await conn.fetchval("SELECT handle FROM idres.changes WHERE seq = $1", seq) == "88.101/X"

        before = await recorded(conn)
        assert await migrate(conn) == []  # idempotent
        assert await recorded(conn) == before
        assert await current_version(conn) == latest_version()
        # the migration lock is not left behind
        assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", MIGRATION_LOCK) == 0


async def test_migrate_from_a_second_connection_finds_nothing_to_do(empty_dsn):
    async with db.connection(empty_dsn) as first, db.connection(empty_dsn) as second:
        assert len(await migrate(first)) == latest_version()
        assert await migrate(second) == []
        assert await check_schema(second) == latest_version()


async def test_concurrent_migrate_applies_each_migration_exactly_once(empty_dsn):
    """Five connections run migrate() together; the advisory lock makes them take turns."""
    conns = [await db.connect(empty_dsn) for _ in range(5)]
    blocker = await db.connect(empty_dsn)
    try:
        # Hold the migration lock so that all five are inside migrate() before any may proceed.
        await blocker.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        runs = [asyncio.ensure_future(migrate(conn)) for conn in conns]

        async def all_waiting() -> bool:
            if any(run.done() for run in runs):
                return True  # one ran without waiting for the lock: the assertions below will say so
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted", MIGRATION_LOCK
            )
            return waiting == len(runs)

        await until(all_waiting, "the migrations never all waited on the migration lock")
        assert not any(run.done() for run in runs)
        await blocker.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

        results = await asyncio.wait_for(asyncio.gather(*runs), 30)
        applied = [m.version for result in results for m in result]
        assert sorted(applied) == [m.version for m in available()]  # each once, by one of them
        assert sum(1 for result in results if result) == 1  # the first to get the lock did everything
        assert await recorded(blocker) == [(m.version, m.name) for m in available()]
        for conn in conns:
            assert await check_schema(conn) == latest_version()
    finally:
        for conn in conns:
            await conn.close()
        await blocker.close()


# --- check_schema --------------------------------------------------------------------------------


async def test_check_schema_on_a_database_without_the_schema(empty_dsn):
    async with db.connection(empty_dsn) as conn:
        with pytest.raises(SchemaMismatch) as caught:
            await check_schema(conn)
        assert "idres migrate" in caught.value.message
        assert "no idres schema" in caught.value.message
        assert await current_version(conn) == 0
        # checking creates nothing
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'idres'") == 0


async def test_check_schema_on_the_latest_schema(fresh_dsn):
    async with db.connection(fresh_dsn) as conn:
        assert await current_version(conn) == latest_version()
        assert await check_schema(conn) == latest_version()


async def test_check_schema_behind_when_idres_brings_a_new_migration(fresh_dsn, monkeypatch):
    """The database was migrated by this idres; a newer idres has one more migration."""
    latest = latest_version()
    extra = Migration(latest + 1, "test_extra", "CREATE TABLE test_extra (id integer PRIMARY KEY);")
    monkeypatch.setattr(migrate_module, "available", lambda: [*_real_available(), extra])
    async with db.connection(fresh_dsn) as conn:
        with pytest.raises(SchemaMismatch) as caught:
            await check_schema(conn)
        message = caught.value.message
        assert f"at version {latest:04d}" in message and f"needs {latest + 1:04d}" in message
        assert "run `idres migrate`" in message

        assert await migrate(conn) == [extra]  # only what is pending
        assert await check_schema(conn) == latest + 1
        assert "test_extra" in await tables(conn)
        assert (await recorded(conn))[-1] == (latest + 1, "test_extra")


_real_available = available


async def test_check_schema_behind_after_an_older_idres_migrated(empty_dsn, monkeypatch):
    """A database migrated by an older idres, which knew one migration less."""
    migrations = available()
    if len(migrations) < 2:
        pytest.skip("needs at least two migrations")
    async with db.connection(empty_dsn) as conn:
        monkeypatch.setattr(migrate_module, "available", lambda: migrations[:-1])
        assert await migrate(conn) == migrations[:-1]
        monkeypatch.undo()

        with pytest.raises(SchemaMismatch) as caught:
            await check_schema(conn)
        message = caught.value.message
        assert f"at version {len(migrations) - 1:04d} but this idres needs {len(migrations):04d}" in message
        assert "run `idres migrate`" in message

        assert await migrate(conn) == migrations[-1:]
        assert await check_schema(conn) == latest_version()


async def test_check_schema_after_the_latest_row_is_deleted(fresh_dsn):
    latest = latest_version()
    async with db.connection(fresh_dsn) as conn:
        await conn.execute("DELETE FROM idres.schema_migrations WHERE version = $1", latest)
        assert await current_version(conn) == latest - 1
        with pytest.raises(SchemaMismatch) as caught:
            await check_schema(conn)
        assert "idres migrate" in caught.value.message
        if latest > 1:
            assert f"at version {latest - 1:04d} but this idres needs {latest:04d}" in caught.value.message


async def test_check_schema_ahead_of_this_idres(fresh_dsn):
    latest = latest_version()
    async with db.connection(fresh_dsn) as conn, db.connection(fresh_dsn) as other:
        await conn.execute("INSERT INTO idres.schema_migrations (version, name) VALUES ($1, 'from_the_future')", latest + 1)
        assert await current_version(conn) == latest + 1
        with pytest.raises(SchemaMismatch) as caught:
            await check_schema(conn)
        message = caught.value.message
        assert f"version {latest + 1:04d}" in message and f"({latest:04d})" in message
        assert "upgrade idres" in message

        # migrate refuses too, changes nothing, and releases its lock
        before = await recorded(conn)
        with pytest.raises(SchemaMismatch, match="upgrade idres"):
            await migrate(conn)
        assert await recorded(conn) == before
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK) is True
        await other.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def test_current_version(empty_dsn):
    async with db.connection(empty_dsn) as conn:
        assert await current_version(conn) == 0
        await conn.execute("CREATE SCHEMA idres; CREATE TABLE idres.schema_migrations (version integer PRIMARY KEY, name text NOT NULL)")
        assert await current_version(conn) == 0  # installed nothing yet
        await migrate(conn)
        assert await current_version(conn) == latest_version()
