"""``idres import``: reading a file of records (CSV or NDJSON) a line at a time, and the checkpoint that
lets an interrupted import resume where it stopped.

CSV has a header row: a ``suffix`` (or ``handle``) column, and one column per value type, given
indexes 1, 2, 3… in column order unless a mapping says otherwise; empty cells give no value. NDJSON has
one record a line in the Handle JSON form (``{"handle": …, "values": […]}``, or ``suffix``). The file is
never loaded whole: lines are read and handed on in groups, so memory stays flat however long it is.
Where the records go (a node's batch API, or the database with COPY) is ``remote_import`` and
``direct_import``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

from registry.errors import IdresError, InvalidHandle, ProtocolError
from registry.model import Handle, fold
from registry.value_json import parse_values_body

CSV, NDJSON = "csv", "ndjson"
HANDLE_COLUMNS = ("suffix", "handle")


@dataclass
class Line:
    """One record of the file: its line number, the batch item it becomes, or why it cannot."""

    number: int
    end: int  # byte offset just after the line
    item: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Column:
    index: int
    type: str
    extra: dict[str, Any] = field(default_factory=dict)  # permissions, ttl


def read_mapping(path: Path | None) -> dict[str, Column]:
    """A mapping file: JSON ``{"column": index}`` or ``{"column": {"index": 2, "type": "URL", "ttl": 3600}}``."""
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProtocolError(f"cannot read the mapping file {path}: {exc}") from None
    mapping = {}
    for name, spec in raw.items() if isinstance(raw, dict) else []:
        spec = {"index": spec} if isinstance(spec, int) else spec
        if not isinstance(spec, dict) or not isinstance(spec.get("index"), int) or spec["index"] <= 0:
            raise ProtocolError(f"mapping of column {name!r} must be an index or {{\"index\": n, \"type\": ...}}")
        extra = {k: v for k, v in spec.items() if k in ("permissions", "ttl")}
        mapping[name] = Column(spec["index"], str(spec.get("type", name)), extra)
    return mapping


class Reader:
    """The lines of a CSV or NDJSON file from a byte offset, each made into a batch item (op create)."""

    def __init__(self, path: Path, prefix: str, *, fmt: str | None = None, mapping: dict[str, Column] | None = None,
                 max_line_bytes: int = 64 * 1024, max_handle_length: int = 255) -> None:
        self.path = path
        self.prefix = prefix
        self.format = fmt or (NDJSON if path.suffix.lower() in (".ndjson", ".jsonl", ".json") else CSV)
        self._mapping = mapping or {}
        self._max_line = max_line_bytes
        self._max_handle = max_handle_length
        self._columns: list[str] = []
        self.data_start = 0

    def open(self) -> None:
        """Read the CSV header (NDJSON has none)."""
        if self.format != CSV:
            return
        with open(self.path, "rb") as f:
            header = f.readline()
            self.data_start = f.tell()
        self._columns = next(csv.reader([header.decode("utf-8-sig").strip()]), [])
        names = [c.strip().lower() for c in self._columns]
        if not any(n in HANDLE_COLUMNS for n in names):
            raise ProtocolError(f"{self.path}: the header row needs a 'suffix' or 'handle' column, found {self._columns}")

    def lines(self, offset: int, number: int) -> Iterator[Line]:
        """Lines from byte ``offset`` (the first numbered ``number`` + 1), empty lines skipped."""
        if offset < self.data_start:
            offset, number = self.data_start, 1  # the header was line 1
        with open(self.path, "rb") as f:
            f.seek(offset)
            for raw in f:
                number += 1
                offset += len(raw)
                if raw.strip():
                    yield self._line(raw, number, offset)

    def _line(self, raw: bytes, number: int, end: int) -> Line:
        line = Line(number, end)
        try:
            if len(raw) > self._max_line:
                raise ProtocolError(f"the line is {len(raw)} bytes long; the limit is {self._max_line}")
            record = self._ndjson(raw) if self.format == NDJSON else self._csv(raw)
            line.item = self._item(record)
        except IdresError as error:
            line.error = error.message
        return line

    def _ndjson(self, raw: bytes) -> dict[str, Any]:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise ProtocolError('a line must be a JSON object like {"handle": ..., "values": [...]}')
        return record

    def _csv(self, raw: bytes) -> dict[str, Any]:
        try:
            cells = next(csv.reader(io.StringIO(raw.decode("utf-8").rstrip("\r\n"))), [])
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ProtocolError(f"not a CSV line: {exc}") from None
        if len(cells) != len(self._columns):
            raise ProtocolError(f"{len(cells)} cells where the header has {len(self._columns)}")
        record: dict[str, Any] = {"values": []}
        position = 0
        for name, cell in zip(self._columns, cells):
            if name.strip().lower() in HANDLE_COLUMNS:
                record[name.strip().lower()] = cell.strip()
                continue
            position += 1
            column = self._mapping.get(name, Column(position, name.strip()))
            if cell != "":
                record["values"].append({"index": column.index, "type": column.type, "data": cell, **column.extra})
        return record

    def _item(self, record: dict[str, Any]) -> dict[str, Any]:
        if isinstance(record.get("suffix"), str) and record["suffix"]:
            text = f"{self.prefix}/{record['suffix']}"
        elif isinstance(record.get("handle"), str) and record["handle"]:
            text = record["handle"]
        else:
            raise InvalidHandle("the record has no suffix or handle")
        handle = Handle.parse(text, max_length=self._max_handle)
        if fold(handle.prefix) != fold(self.prefix):
            raise InvalidHandle(f"{text} is not under the prefix {self.prefix}")
        parse_values_body(record.get("values"))  # refused here, with its line number, rather than by the node
        return {"op": "create", "handle": handle.text, "values": record.get("values") or []}

    def count_lines(self) -> int:
        """Records in the file (its non-empty lines after any header), counted without keeping them."""
        count = 0
        with open(self.path, "rb") as f:
            f.seek(self.data_start)
            for raw in f:
                count += bool(raw.strip())
        return count


@dataclass
class Checkpoint:
    """How far an import of one file got: every line before ``offset`` has been imported."""

    path: Path
    source: str
    size: int
    offset: int = 0
    line: int = 0
    done: bool = False

    @classmethod
    def load(cls, path: Path, source: Path, restart: bool = False) -> "Checkpoint":
        size = source.stat().st_size
        fresh = cls(path, str(source.resolve()), size)
        if restart or not path.exists():
            return fresh
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ProtocolError(f"cannot read the checkpoint {path}: {exc}; use --restart to start over") from None
        if data.get("source") != fresh.source or data.get("size") != size:
            raise ProtocolError(f"the checkpoint {path} belongs to another file, or {source} changed since; "
                                "use --restart to import it from the start")
        return cls(path, fresh.source, size, int(data["offset"]), int(data["line"]), bool(data.get("done")))

    def advance(self, offset: int, line: int, done: bool = False) -> None:
        """Record progress, atomically: the file is replaced whole or not at all."""
        self.offset, self.line, self.done = offset, line, done
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({"source": self.source, "size": self.size, "offset": offset, "line": line, "done": done}))
        os.replace(temporary, self.path)


@dataclass
class Summary:
    lines: int = 0
    created: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def fail(self, line: int, message: str, keep: int = 1000) -> None:
        self.failed += 1
        if len(self.errors) < keep:
            self.errors.append((line, message))

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "created": self.created, "unchanged": self.unchanged, "failed": self.failed,
                "errors": [{"line": n, "message": m} for n, m in self.errors]}


def groups(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    """Consecutive lines, ``size`` at a time."""
    group: list[Line] = []
    for line in lines:
        group.append(line)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group
