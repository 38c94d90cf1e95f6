"""Shared fixtures: one embedded PostgreSQL per test session, a fresh database per test, real nodes."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from registry.pg import db
from registry.pg.embedded import EmbeddedPostgres
from registry.pg.migrate import migrate
from registry.pg.store import Store

from .nodes import InProcessNode

TEMPLATE = "idres_template"
_counter = itertools.count(1)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def pg_root():
    """A throwaway PostgreSQL cluster for the whole session; its DSN (database ``postgres``)."""
    directory = Path(tempfile.mkdtemp(prefix="idres-test-"))
    server = EmbeddedPostgres(directory)
    dsn = server.start()
    yield dsn
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_dsn(pg_root):
    """A database with the idres schema, used as the template of every test database."""
    async with db.connection(pg_root) as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    dsn = with_database(pg_root, TEMPLATE)
    async with db.connection(dsn) as conn:
        await migrate(conn)
    return dsn


@pytest.fixture(scope="session")
async def shared_dsn(pg_root, template_dsn):
    name = "shared"
    async with db.connection(pg_root) as conn:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return with_database(pg_root, name)


@pytest.fixture
async def dsn(shared_dsn):
    """A migrated database emptied for this test (tables truncated: much faster than a new database)."""
    async with db.connection(shared_dsn) as conn:
        await conn.execute("TRUNCATE handles, prefixes, changes, statistics, batches, batch_chunks, sessions, rate_counts, mirrors, mirror_seen")
        await conn.execute("UPDATE sync_horizon SET pruned_through = 0, pruned_at = NULL")
    return shared_dsn


@pytest.fixture
async def fresh_dsn(pg_root, template_dsn):
    """A database of its own for this test, for tests that need several."""
    name = f"t{next(_counter)}"
    async with db.connection(pg_root) as conn:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield with_database(pg_root, name)
    async with db.connection(pg_root) as conn:
        await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
async def new_database(pg_root, template_dsn):
    """A factory of migrated databases of their own, for tests with several nodes."""
    made = []

    async def make() -> str:
        name = f"t{next(_counter)}"
        async with db.connection(pg_root) as conn:
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        made.append(name)
        return with_database(pg_root, name)

    yield make
    async with db.connection(pg_root) as conn:
        for name in made:
            await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
async def empty_dsn(pg_root):
    """A fresh database without the idres schema."""
    name = f"e{next(_counter)}"
    async with db.connection(pg_root) as conn:
        await conn.execute(f"CREATE DATABASE {name}")
    yield with_database(pg_root, name)
    async with db.connection(pg_root) as conn:
        await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
async def store(dsn):
    pool = await db.create_pool(dsn, max_size=4)
    yield Store(pool)
    await pool.close()


@pytest.fixture
async def node(dsn, tmp_path):
    """A running node (HTTP and HTTPS on 127.0.0.1, ephemeral ports) with prefix 88.101 and its admin."""
    async with InProcessNode(dsn, tmp_path) as running:
        await running.provision("88.101")
        yield running
