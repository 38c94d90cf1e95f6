"""Work a node does at an interval in the background (signature renewal, change-log pruning)."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from registry.errors import IdresError


async def every(interval: float, tick: Callable[[], Awaitable[object]], skipped: Callable[[IdresError], None]) -> None:
    """Run ``tick`` now and then every ``interval`` seconds until cancelled; a tick that fails with an
    IdresError (the database away, say) is told to ``skipped``, and the next one runs on time."""
    while True:
        try:
            await tick()
        except IdresError as exc:
            skipped(exc)
        await asyncio.sleep(interval)
