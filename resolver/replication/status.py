"""How each mirror stands — cursor, lag, records, rejections, last error — for ``GET /api/sync/status`` and
``idres mirror status``, from what the followers record in the database.

Lag in changes is the origin's newest seq, as last seen, less the cursor. Lag in seconds is 0 while the
mirror holds every change the origin had when it last answered, that answer is recent (within a
long-poll and a timeout) and no error came after it; otherwise the seconds since the mirror last held
everything (since it was added, before its first snapshot).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import asyncpg

from registry.pg import feed, mirrors
from registry.pg.mirrors import Mirror

from ..config import Settings


def _time(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def lag(mirror: Mirror, now: datetime, fresh_for: float) -> tuple[int | None, float]:
    """(changes behind, seconds behind) of a mirror at ``now``."""
    changes = None
    if mirror.cursor is not None and mirror.origin_head is not None:
        changes = max(0, mirror.origin_head - mirror.cursor)
    recent = mirror.contacted_at is not None and (now - mirror.contacted_at).total_seconds() <= fresh_for
    failing = mirror.last_error_at is not None and (mirror.contacted_at is None or mirror.last_error_at > mirror.contacted_at)
    if changes == 0 and recent and not failing and mirror.state == "following":
        return changes, 0.0
    since = mirror.caught_up_at or mirror.added_at
    return changes, round(max(0.0, (now - since).total_seconds()), 3)


def mirror_status(mirror: Mirror, now: datetime, fresh_for: float) -> dict[str, Any]:
    changes, seconds = lag(mirror, now, fresh_for)
    return {
        "prefix": mirror.spelled,
        "origin": mirror.origin,
        "state": mirror.state,
        "cursor": mirror.cursor,
        "originHead": mirror.origin_head,
        "lagChanges": changes,
        "lagSeconds": seconds,
        "records": mirror.records,
        "rejected": mirror.rejected,
        "applied": mirror.applied,
        "snapshots": mirror.snapshots,
        "verification": mirror.verification,
        "user": mirror.username,
        "lastContact": _time(mirror.contacted_at),
        "caughtUpAt": _time(mirror.caught_up_at),
        "lastError": mirror.last_error,
        "lastErrorAt": _time(mirror.last_error_at),
    }


async def node_status(conn: asyncpg.Connection, settings: Settings, prefix: str | None = None) -> dict[str, Any]:
    """The feed this node serves (head, horizon, retention), and every mirror it keeps (or the one of ``prefix``)."""
    replication = settings.replication
    now = datetime.now(timezone.utc)
    head, horizon = await feed.head(conn), await feed.horizon(conn)
    kept = await mirrors.every(conn)
    if prefix is not None:
        kept = [m for m in kept if m.prefix == prefix]
    fresh_for = replication.mirror_wait + replication.mirror_timeout
    return {
        "feed": {"head": head, "horizon": horizon, "retentionSeconds": replication.sync_retention},
        "mirrors": [mirror_status(m, now, fresh_for) for m in kept],
    }
