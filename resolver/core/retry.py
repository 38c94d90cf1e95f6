"""Optimistic concurrency: run a read-modify-write again when the record changed underneath it."""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

from registry.errors import ConcurrentUpdate, IdresError

T = TypeVar("T")
ATTEMPTS = 5


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int = ATTEMPTS,
    also: tuple[type[IdresError], ...] = (),
    gave_up: str | None = None,
) -> T:
    """``attempt()`` until it raises no ConcurrentUpdate (nor one of ``also``), at most ``attempts`` times.

    Each attempt must read afresh what it changes. After the last conflict, that conflict propagates, or
    a ConcurrentUpdate saying ``gave_up`` when one is given.
    """
    conflicts = (ConcurrentUpdate, *also)
    for _ in range(attempts - 1):
        try:
            return await attempt()
        except conflicts:
            continue
    try:
        return await attempt()
    except conflicts:
        if gave_up is None:
            raise
        raise ConcurrentUpdate(gave_up) from None
