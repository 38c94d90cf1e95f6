"""Resolution statistics per prefix and hour: ``GET /api/stats`` for a prefix's admins, and
``GET /api/stats/report``, the report a parent node pulls (server admins): see docs/metrics.md."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from registry.errors import InvalidHandle, ProtocolError, ResponseCode
from registry.model import parse_prefix
from registry.pg.statistics import HourCounts

from .callers import caller_of
from .context import NODE
from .errors import add_resource
from .respond import json_response

DEFAULT_PERIOD = timedelta(days=1)
MAX_PERIOD = timedelta(days=366)


def _moment(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ProtocolError(f"{what} {text!r} is not an ISO 8601 date or time, e.g. 2026-11-29T08:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def period(query) -> tuple[datetime, datetime]:
    """``from`` and ``to`` of the query (default: the last 24 hours), checked."""
    end = _moment(query["to"], "to") if "to" in query else datetime.now(timezone.utc)
    start = _moment(query["from"], "from") if "from" in query else end - DEFAULT_PERIOD
    if start >= end:
        raise ProtocolError("'from' must be before 'to'")
    if end - start > MAX_PERIOD:
        raise ProtocolError(f"the period is longer than {MAX_PERIOD.days} days: ask for less at a time")
    return start, end


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hours(rows: list[HourCounts]) -> dict[str, Any]:
    hours = [{"hour": _iso(r.hour), "resolutions": r.resolutions, "notFound": r.not_found, "registrations": r.registrations}
             for r in rows]
    total = {k: sum(h[k] for h in hours) for k in ("resolutions", "notFound", "registrations")}
    return {"total": total, "hours": hours}


async def prefix_stats(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    sent = request.query.get("prefix", "")
    if not sent:
        raise InvalidHandle("give the prefix: /api/stats?prefix=88.101.5")
    prefix = parse_prefix(sent)
    caller = await caller_of(request, node, required=True, handle=f"0.NA/{prefix}")
    start, end = period(request.query)
    await node.registrar.authorise_prefix_reader(caller, prefix)
    rows = await node.read_statistics([prefix], start, end)
    body = {"responseCode": ResponseCode.SUCCESS, "prefix": sent, "from": _iso(start), "to": _iso(end), **_hours(rows)}
    return json_response(request, body)


async def report(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    caller = await caller_of(request, node, required=True, handle=None)
    prefixes = await node.registrar.homed(caller)  # server admins only
    start, end = period(request.query)
    rows = await node.read_statistics(prefixes, start, end)
    by_prefix: dict[str, list[HourCounts]] = {p: [] for p in prefixes}
    for row in rows:
        by_prefix.setdefault(row.prefix, []).append(row)
    body = {"responseCode": ResponseCode.SUCCESS, "node": node.settings.node_name, "from": _iso(start), "to": _iso(end),
            "prefixes": [{"prefix": p, **_hours(r)} for p, r in sorted(by_prefix.items())]}
    return json_response(request, body)


def add_routes(app: web.Application) -> None:
    add_resource(app, "/api/stats", {"GET": prefix_stats})
    add_resource(app, "/api/stats/report", {"GET": report})
