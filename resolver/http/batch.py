"""``POST /api/batch``: many writes in one request, NDJSON or a JSON array in, one NDJSON result line per
item out, streamed as each chunk commits (``writes/batch.py`` does the work).

Errors found before the first result (no credentials, a body or item count over the limits, a body that
is not a JSON array or NDJSON, an Idempotency-Key reused with another body) are answered as every other
error is. Once results flow the status is 200: an item's result says how it went, and a last line
``{"done": true, …}`` says the batch ran to its end, or ``{"done": false, …}`` why it stopped.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import hdrs, web

from registry.errors import BodyTooLarge, IdresError, ProtocolError

from ..writes.batch import Batch, Item, parse_item
from .callers import caller_of
from .context import NODE, NodeParts
from .errors import add_resource, error_response, with_cors
from .params import next_chunk

log = logging.getLogger(__name__)
IDEMPOTENCY_KEY = "Idempotency-Key"
NDJSON = "application/x-ndjson"
MAX_KEY_LENGTH = 255


async def post_batch(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    try:
        caller = await caller_of(request, node, required=True, handle=None)
        body = await _read_body(request, node.settings.batch.max_bytes)
        items = _items(body, node)
        await node.limits.check_writes(caller, request.remote, len(items))
        batch = await node.batches.open(caller, _idempotency_key(request), body)
    except IdresError as error:
        return with_cors(request, error_response(request, error))
    response = web.StreamResponse(status=200, headers={hdrs.CONTENT_TYPE: NDJSON})
    with_cors(request, response)
    await response.prepare(request)
    async with node.batches.running:
        await _stream(request, response, batch, items)
    return response


async def _stream(request: web.Request, response: web.StreamResponse, batch: Batch, items: list[Item]) -> None:
    done = 0
    try:
        async for lines in batch.run(items):
            await response.write(lines)
            done += lines.count(b"\n")
        await response.write(orjson.dumps({"done": True, "items": len(items), "failed": batch.failed}) + b"\n")
    except IdresError as error:
        log.warning("batch stopped after %d of %d items: %s", done, len(items), error.message)
        line = {"done": False, "items": len(items), "completed": done, "responseCode": int(error.response_code),
                "message": f"{error.message}; send the batch again (with the same Idempotency-Key) to complete it"}
        await response.write(orjson.dumps(line) + b"\n")
    except ConnectionResetError:
        log.info("the client left a batch after %d of %d items", done, len(items))
        return
    await response.write_eof()


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the batch is {request.content_length} bytes; the limit is {limit} (IDRES_BATCH_MAX_BYTES)")
    chunks, size = [], 0
    while chunk := await next_chunk(request):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the batch is over {limit} bytes (IDRES_BATCH_MAX_BYTES): split it")
        chunks.append(chunk)
    return b"".join(chunks)


def _items(body: bytes, node: NodeParts) -> list[Item]:
    limits = node.batches.limits
    start = body.lstrip()[:1]
    if start == b"[":
        try:
            raw: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"the batch is not a valid JSON array: {exc}") from None
        sized = [(element, len(orjson.dumps(element))) for element in raw]
    else:
        sized = [(line, len(line)) for line in (line.strip() for line in body.split(b"\n")) if line]
    if not sized:
        raise ProtocolError("the batch holds no items: send NDJSON (one operation a line) or a JSON array")
    if len(sized) > limits.max_items:
        raise BodyTooLarge(f"the batch has {len(sized)} items; the limit is {limits.max_items} (IDRES_BATCH_MAX_ITEMS)")
    return [parse_item(element, n, limits, size) for n, (element, size) in enumerate(sized)]


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ProtocolError(f"the {IDEMPOTENCY_KEY} header must be 1 to {MAX_KEY_LENGTH} characters")
    return key.strip()


def add_routes(app: web.Application) -> None:
    add_resource(app, "/api/batch", {"POST": post_batch}, raw=("POST",))
