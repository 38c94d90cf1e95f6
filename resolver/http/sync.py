"""``/api/sync/changes`` (the change feed, long-polled), ``/api/sync/snapshot`` (NDJSON, streamed) and
``/api/sync/status`` (this node's feed and mirrors): see docs/replication.md."""

from __future__ import annotations

import asyncio
import math
import zlib
from typing import AsyncIterator

import orjson
from aiohttp import hdrs, web
from multidict import MultiMapping

from registry.errors import OperationNotSupported, ProtocolError
from registry.model import fold, parse_prefix

from ..replication.service import Replication
from ..replication.wire import NDJSON_TYPE, page_json
from .callers import caller_of
from .context import NODE, NodeParts
from .errors import add_resource
from .respond import accepts_gzip, bytes_response, json_response

DEFAULT_LIMIT = 1000
GZIP_LEVEL = 1  # a snapshot is large: the fastest level, which still shrinks product records about 6.5 times
MAX_PREFIXES = 100


def _replication(node: NodeParts) -> Replication:
    if node.replication is None:
        raise OperationNotSupported("this node serves no change feed")
    return node.replication


def _number(query: MultiMapping[str], name: str, default: float, low: float, high: float, integral: bool = True) -> float:
    if name not in query:
        return default
    text = query[name].strip()
    try:
        value = int(text) if integral else float(text)
    except ValueError:
        raise ProtocolError(f"{name} must be {'an integer' if integral else 'a number'}, not {text!r}") from None
    if not low <= value <= high or (not integral and not math.isfinite(value)):
        raise ProtocolError(f"{name} must be between {low:g} and {high:g}, not {text}")
    return value


def _prefixes(query: MultiMapping[str]) -> list[str]:
    """``prefix=`` values, repeatable or comma-separated (``0.NA/`` optional), as written."""
    found = [p.strip() for value in query.getall("prefix", []) for p in value.split(",") if p.strip()]
    if len(found) > MAX_PREFIXES:
        raise ProtocolError(f"at most {MAX_PREFIXES} prefixes per request")
    return list(dict.fromkeys(parse_prefix(p) for p in found))


async def _authorised(request: web.Request, node: NodeParts, prefixes: list[str]) -> Replication:
    replication = _replication(node)
    caller = await caller_of(request, node, required=False, handle=None)
    await replication.access.authorise(caller, tuple(prefixes))
    return replication


async def get_changes(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    settings = node.settings.replication
    query = request.query
    after = int(_number(query, "after", 0, 0, 2**63 - 1))
    limit = int(_number(query, "limit", min(DEFAULT_LIMIT, settings.sync_max_limit), 1, settings.sync_max_limit))
    wait = _number(query, "wait", 0.0, 0.0, settings.sync_max_wait, integral=False)
    prefixes = _prefixes(query)
    replication = await _authorised(request, node, prefixes)
    page = await replication.feed.changes(after, limit, tuple(fold(p) for p in prefixes), wait)
    return bytes_response(request, orjson.dumps(page_json(page)), gzip_min=node.settings.requests.gzip_min_bytes)


async def get_snapshot(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    prefixes = _prefixes(request.query)
    if not prefixes:
        raise ProtocolError("name the prefixes of the snapshot with ?prefix= (repeatable, or comma-separated)")
    chunk = int(_number(request.query, "chunk", DEFAULT_LIMIT, 1, node.settings.replication.sync_max_limit))
    replication = await _authorised(request, node, prefixes)
    gzip = accepts_gzip(request)
    headers = {hdrs.CONTENT_TYPE: NDJSON_TYPE, hdrs.CACHE_CONTROL: "no-store", hdrs.VARY: "Accept-Encoding"}
    if gzip:
        headers[hdrs.CONTENT_ENCODING] = "gzip"
    response = web.StreamResponse(headers=headers)
    response.enable_chunked_encoding()
    async with replication.snapshots.reserve():
        stream = replication.snapshots.stream(prefixes, chunk)
        try:
            await response.prepare(request)
            await (_write_gzip(response, stream) if gzip else _write(response, stream))
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away: nobody to tell
        finally:
            await stream.aclose()
    return response


async def _write(response: web.StreamResponse, stream: AsyncIterator[bytes]) -> None:
    async for block in stream:
        await response.write(block)


async def _write_gzip(response: web.StreamResponse, stream: AsyncIterator[bytes]) -> None:
    """Compressed off the event loop (zlib lets go of the GIL), each block while the next is being made."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    pending: asyncio.Future | None = None
    async for block in stream:
        if pending is not None:
            await response.write(await pending)
        pending = asyncio.ensure_future(asyncio.to_thread(compressor.compress, block))
    if pending is not None:
        await response.write(await pending)
    await response.write(compressor.flush())


async def get_status(request: web.Request) -> web.StreamResponse:
    return json_response(request, await _replication(request.app[NODE]).status())


async def _answer_long_polls(app: web.Application) -> None:
    """At shutdown, long-polls are answered at once rather than holding the shutdown for their wait."""
    replication = app[NODE].replication
    if replication is not None:
        replication.feed.close()


def add_routes(app: web.Application) -> None:
    app.on_shutdown.append(_answer_long_polls)
    add_resource(app, "/api/sync/changes", {"GET": get_changes})
    add_resource(app, "/api/sync/snapshot", {"GET": get_snapshot})
    add_resource(app, "/api/sync/status", {"GET": get_status})
