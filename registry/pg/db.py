"""Connections to PostgreSQL: the pool, single connections, and translation of driver errors.

Every idres table lives in the ``idres`` schema, so idres can share a database with other programs.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Callable

import asyncpg

from ..errors import ConfigurationError, ServerUnavailable

SCHEMA = "idres"
SERVER_SETTINGS = {"search_path": SCHEMA, "application_name": "idres"}
CONNECT_TIMEOUT = 10.0

# Driver errors that mean "the database is not there right now" (lost connections, a server shutting
# down or crashing, one not accepting connections yet, the driver's own state after such a loss): the
# client may retry. None of them is the request's fault, and none is a 500.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
UNAVAILABLE_MESSAGE = "the database is unavailable; try again shortly"
IN_DOUBT_MESSAGE = ("the database connection was lost while this write was being committed: it may have been "
                    "applied. Read the handle before writing it again")
# Refusals that no retry mends: the DSN names a database, role or password the server does not know.
_MISCONFIGURED = (
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
)


def driver_failure(exc: BaseException) -> str:
    """What went wrong, for the log (never for a client)."""
    return f"{type(exc).__name__}: {exc}".strip()


@contextlib.contextmanager
def unavailable_on_driver_errors() -> "contextlib.AbstractContextManager[None]":
    try:
        yield
    except _UNAVAILABLE as exc:
        error = ServerUnavailable(UNAVAILABLE_MESSAGE)
        error.cause = driver_failure(exc)
        raise error from exc


async def commit(transaction: asyncpg.transaction.Transaction) -> None:
    """Commit; a connection lost meanwhile leaves the outcome unknown, and the error says so."""
    try:
        await transaction.commit()
    except _UNAVAILABLE as exc:
        error = ServerUnavailable(IN_DOUBT_MESSAGE)
        error.cause = "commit in doubt: " + driver_failure(exc)
        raise error from exc


@contextlib.contextmanager
def _connecting() -> "contextlib.AbstractContextManager[None]":
    """Driver errors of a new connection: a DSN the server refuses is a configuration error (said once,
    at start), anything else that fails is the database being away."""
    try:
        with unavailable_on_driver_errors():
            yield
    except _MISCONFIGURED as exc:
        raise ConfigurationError(f"PostgreSQL refused the connection: {exc}; check the DSN") from None


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool connections carry no session state (no SET, LISTEN, cursors or session locks): asyncpg
    still rolls back an open transaction on release, and this skips its reset query, which would
    otherwise cost a round trip per request."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float = 30.0,
                      query_observer: Callable[[Any], None] | None = None) -> asyncpg.Pool:
    """A pool; ``query_observer`` is told of every query (its text and elapsed time), for metrics."""

    async def observed(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(query_observer)

    with _connecting():
        return await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            timeout=CONNECT_TIMEOUT,
            server_settings=SERVER_SETTINGS,
            reset=_keep_session,
            init=observed if query_observer is not None else None,
        )


async def connect(dsn: str) -> asyncpg.Connection:
    with _connecting():
        return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT, server_settings=SERVER_SETTINGS)


@contextlib.asynccontextmanager
async def connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()
