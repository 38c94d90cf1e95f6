"""Batches of writes (``POST /api/batch``): items parsed one by one, applied in chunks of one transaction
each, one result per item in input order as each chunk commits.

An item that cannot be read or applied gets an error of its own; the others go on. Rights are looked
up once per prefix for the whole batch (one ``Authorizer``). With an idempotency key, each chunk's
results are committed with its writes (``registry.pg.batches``), and a run of the same batch again
replays the chunks already committed instead of applying them twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Sequence

import orjson

from registry.errors import IdresError, InvalidValue, PrefixNotHomed, ProtocolError, ResponseCode
from registry.model import Handle, check_indexes, integer_text
from registry.pg import batches
from registry.pg.groups import WriteGroup
from registry.value_json import parse_values_body

from ..core.authority import CurrentAuthority
from ..core.callers import Caller
from .applier import Applier
from .authorizer import Authorizer, require_homed
from .operations import ADD, CREATE, DELETE, KINDS, REMOVE, REPLACE, Operation, Outcome

_MESSAGES = {CREATE: "created", REPLACE: "replaced", ADD: "values added", REMOVE: "values removed", DELETE: "deleted"}


@dataclass(frozen=True)
class BatchLimits:
    max_items: int = 10_000
    max_line_bytes: int = 64 * 1024
    chunk_size: int = 500
    idempotency_ttl: int = 86400
    max_handle_length: int = 255
    concurrency: int = 2


@dataclass
class Item:
    """One item of a batch: the operation it asks for, or why it cannot be applied."""

    position: int
    op: Operation | None = None
    error: IdresError | None = None
    handle: str | None = None


def parse_item(raw: Any, position: int, limits: BatchLimits, size: int) -> Item:
    """An item from its JSON (bytes of an NDJSON line, or an element of a JSON array of ``size`` bytes)."""
    item = Item(position)
    try:
        if size > limits.max_line_bytes:
            raise ProtocolError(f"the item is {size} bytes long; the limit is {limits.max_line_bytes}")
        if isinstance(raw, (bytes, bytearray)):
            raw = _json_line(raw)
        item.handle = raw.get("handle") if isinstance(raw, dict) and isinstance(raw.get("handle"), str) else None
        item.op = _operation(raw, limits)
    except IdresError as error:
        item.error = error
    return item


def _json_line(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"the item is not valid JSON: {exc}") from None


def _operation(raw: Any, limits: BatchLimits) -> Operation:
    if not isinstance(raw, dict):
        raise ProtocolError('an item must be a JSON object like {"op": "create", "handle": ..., "values": [...]}')
    kind = raw.get("op", CREATE)
    if kind not in KINDS:
        raise ProtocolError(f"unknown op {kind!r}: use one of {', '.join(KINDS)}")
    if not isinstance(raw.get("handle"), str):
        raise ProtocolError("an item needs a 'handle' string")
    handle = Handle.parse(raw["handle"], max_length=limits.max_handle_length)
    if kind == DELETE:
        return Operation(DELETE, handle)
    if kind == REMOVE:
        return Operation(REMOVE, handle, indexes=_indexes(raw.get("indexes")))
    values, _ = parse_values_body(raw.get("values"))
    check_indexes(values)
    if kind == ADD and not values:
        raise InvalidValue("no values to add")
    overwrite = raw.get("overwrite", True)
    if not isinstance(overwrite, bool):
        raise ProtocolError("'overwrite' must be true or false")
    return Operation(kind, handle, tuple(values), overwrite=overwrite)


def _indexes(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise ProtocolError("a remove item needs 'indexes', a non-empty array of value indexes")
    out = []
    for index in raw:
        number = index if isinstance(index, int) and not isinstance(index, bool) else integer_text(str(index))
        if number is None or number <= 0:
            raise ProtocolError(f"index {index!r} is not a positive number")
        out.append(number)
    return tuple(out)


def result_line(item: Item, outcome: Outcome | None = None) -> bytes:
    body: dict[str, Any] = {"index": item.position}
    error = item.error if outcome is None else outcome.error
    if error is not None:
        body["responseCode"] = int(error.response_code)
        body["message"] = error.message or error.response_code.name.replace("_", " ").lower()
    else:
        result = outcome.result if outcome is not None else None
        kind = item.op.kind if item.op is not None else ""
        body["responseCode"] = int(ResponseCode.SUCCESS)
        if result is not None and not result.changed:
            body["message"] = "unchanged"
        else:
            body["message"] = "created" if result is not None and result.created and kind == REPLACE else _MESSAGES.get(kind, "done")
    if item.handle is not None or item.op is not None:
        body["handle"] = item.op.handle.text if item.op is not None else item.handle
    return orjson.dumps(body) + b"\n"


def batch_key(caller: Caller, idempotency_key: str) -> str:
    return f"{caller.identity.key[0]}:{caller.identity.key[1]}\n{idempotency_key}"


def body_hash(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


class BatchRunner:
    """Runs batches for one serving process, through the same applier as single writes."""

    def __init__(self, applier: Applier, authorizer: Callable[[], Authorizer], authority: CurrentAuthority,
                 limits: BatchLimits) -> None:
        self.applier = applier
        self.new_authorizer = authorizer
        self._authority = authority
        self.limits = limits
        self.running = asyncio.Semaphore(limits.concurrency)  # batches applied at once by this process

    async def open(self, caller: Caller, idempotency_key: str | None, body: bytes) -> "Batch":
        """A batch of ``caller``; with a key, recorded (or found) in the store; its chunk size in force."""
        chunk_size, key = self.limits.chunk_size, None
        if idempotency_key is not None:
            key = batch_key(caller, idempotency_key)
            chunk_size = await batches.open_batch(self.applier.store.pool, key, body_hash(body), chunk_size,
                                                  self.limits.idempotency_ttl)
        return Batch(self, caller, key, chunk_size)

    def check(self, item: Item) -> None:
        """Refuse an item whose handle this node does not sign (only deletes may be of other prefixes)."""
        op = item.op
        if op is not None and op.kind != DELETE:
            try:
                require_homed(self._authority.snapshot, op.handle)
            except PrefixNotHomed as error:
                item.error, item.op = error, None


class Batch:
    def __init__(self, runner: BatchRunner, caller: Caller, key: str | None, chunk_size: int) -> None:
        self._runner = runner
        self._caller = caller
        self._key = key
        self.chunk_size = chunk_size
        self.failed = 0
        self._authorizer = runner.new_authorizer()

    async def run(self, items: Sequence[Item]) -> AsyncIterator[bytes]:
        """The result lines of each chunk, in order, as each commits."""
        for start in range(0, len(items), self.chunk_size):
            lines = await self.chunk(start // self.chunk_size, items[start:start + self.chunk_size])
            self.failed += sum(1 for line in lines.splitlines() if b'"responseCode":1,' not in line)
            yield lines

    async def chunk(self, number: int, items: Sequence[Item]) -> bytes:
        pool = self._runner.applier.store.pool
        if self._key is not None:
            done = await batches.results_of(pool, self._key, number)
            if done is not None:
                return done
        for item in items:
            self._runner.check(item)
        valid = [item for item in items if item.op is not None]
        results: list[bytes] = []

        async def claim(group: WriteGroup, _: list[Outcome]) -> None:
            if self._key is not None:
                await batches.claim(group.connection, self._key, number)

        async def record(group: WriteGroup, outcomes: list[Outcome]) -> None:
            by_position = dict(zip((i.position for i in valid), outcomes))
            results[:] = [result_line(i, by_position.get(i.position)) for i in items]
            if self._key is not None:
                await batches.record(group.connection, self._key, number, b"".join(results))

        try:
            await self._runner.applier.apply([(i.op, self._caller) for i in valid], self._authorizer,
                                              before=claim, after=record)
        except batches.ChunkTaken:
            return await batches.results_of(pool, self._key, number) or b""
        return b"".join(results)
