"""Reading a snapshot stream as a follower: the header, then chunks of records each checked against its
``chunk`` line (count and SHA-256 of the lines), then the ``end`` line; a stream that breaks off before
it, or says it failed, is an error and nothing after the last whole chunk is taken."""

from __future__ import annotations

from typing import AsyncIterator

import orjson

from registry.errors import UpstreamInvalid, UpstreamUnavailable
from registry.pg.feed import RecordRow

from .wire import ChunkInfo, LineDigest, parse_chunk, parse_record


class SnapshotReader:
    def __init__(self, lines: AsyncIterator[bytes], origin: str, *, digests: bool) -> None:
        self._lines = lines
        self._origin = origin
        self._digests = digests
        self.cursor = 0
        self.records = 0

    def _parse(self, line: bytes) -> dict:
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise UpstreamInvalid(f"the snapshot from {self._origin} has a line that is not JSON") from None
        if not isinstance(data, dict):
            raise UpstreamInvalid(f"the snapshot from {self._origin} has a line that is not a JSON object")
        return data

    async def header(self) -> int:
        """The cursor the feed continues from, from the first line."""
        async for line in self._lines:
            info = self._parse(line).get("snapshot")
            if not isinstance(info, dict) or not isinstance(info.get("cursor"), int):
                raise UpstreamInvalid(f"the snapshot from {self._origin} does not start with its cursor")
            self.cursor = info["cursor"]
            return self.cursor
        raise UpstreamUnavailable(f"the snapshot from {self._origin} was empty")

    async def chunks(self) -> AsyncIterator[tuple[ChunkInfo, list[RecordRow]]]:
        """Each whole chunk, with its records, once its chunk line matched them."""
        rows: list[RecordRow] = []
        digest = LineDigest()
        async for line in self._lines:
            data = self._parse(line)
            if "handle" in data:
                rows.append(parse_record(data))
                if self._digests:
                    digest.add(line)
            elif "chunk" in data:
                yield self._checked(parse_chunk(data["chunk"]), rows, digest), rows
                rows, digest = [], LineDigest()
            elif "end" in data:
                self._end(data["end"], rows)
                return
            elif "error" in data:
                error = data["error"] if isinstance(data["error"], dict) else {}
                raise UpstreamUnavailable(f"the origin {self._origin} broke off the snapshot: {error.get('message', 'no reason given')}")
        raise UpstreamUnavailable(f"the snapshot from {self._origin} ended before its end line")

    def _checked(self, chunk: ChunkInfo, rows: list[RecordRow], digest: LineDigest) -> ChunkInfo:
        if chunk.records != len(rows) or (self._digests and chunk.sha256 != digest.hexdigest()):
            raise UpstreamInvalid(f"chunk {chunk.number} of the snapshot from {self._origin} does not match its records")
        self.records += len(rows)
        return chunk

    def _end(self, end: object, rows: list[RecordRow]) -> None:
        if rows or not isinstance(end, dict) or end.get("records") != self.records or end.get("cursor") != self.cursor:
            raise UpstreamInvalid(f"the snapshot from {self._origin} ends with records that no chunk line covers, "
                                  "or a total that does not match")
