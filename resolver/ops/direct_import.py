"""``idres import --dsn|--data-dir``: records straight into the database with COPY, signed as the node
signs them, the change log filled, a chunk per transaction with the checkpoint advanced after each."""

from __future__ import annotations

from typing import Callable

from registry.errors import IdresError, PrefixNotHomed
from registry.model import Handle, Record, fold
from registry.pg import bulk
from registry.pg.store import Store
from registry.records import StoredRecord
from registry.value_json import parse_values_body
from registry.values import SIGNATURE

from ..core.seckeys import SecretHasher
from .importer import Checkpoint, Line, Reader, Summary, groups

Progress = Callable[[Summary], None]
Report = Callable[[int, str], None]


async def import_direct(store: Store, reader: Reader, checkpoint: Checkpoint, *, chunk: int, now: int,
                        hasher: SecretHasher, progress: Progress, report: Report) -> Summary:
    if fold(reader.prefix) not in {fold(p) for p in await store.homed_prefixes()}:
        raise PrefixNotHomed(f"prefix {reader.prefix} is not homed here: run `idres prefix home {reader.prefix}` first")
    summary = Summary()
    for group in groups(reader.lines(checkpoint.offset, checkpoint.line), chunk):
        await _load(store, group, summary, now, hasher, report)
        checkpoint.advance(group[-1].end, group[-1].number)
        progress(summary)
    checkpoint.advance(checkpoint.offset, checkpoint.line, done=True)
    return summary


async def _load(store: Store, group: list[Line], summary: Summary, now: int, hasher: SecretHasher, report: Report) -> None:
    rows: dict[str, tuple[str, str, StoredRecord]] = {}
    records: dict[str, tuple[int, Record]] = {}
    for line in group:
        summary.lines += 1
        try:
            if line.error is not None:
                raise IdresError(line.error)
            record = _record(line, now, hasher)
            if record.handle.key in records:
                raise IdresError(f"{record.handle.text} is on line {records[record.handle.key][0]} already")
        except IdresError as error:
            summary.fail(line.number, error.message)
            report(line.number, error.message)
            continue
        records[record.handle.key] = (line.number, record)
        rows[record.handle.key] = (record.handle.key, record.handle.prefix_key, store.sealed(record))
    inserted, existing = await bulk.load(store.pool, list(rows.values()))
    summary.created += len(inserted)
    for key, stored in existing.items():
        number, record = records[key]
        if _content(stored.record) == _content(record):
            summary.unchanged += 1
        else:
            message = f"{record.handle.text} exists with other values"
            summary.fail(number, message)
            report(number, message)


def _record(line: Line, now: int, hasher: SecretHasher) -> Record:
    item = line.item or {}
    values, _ = parse_values_body(item.get("values"))
    handle = Handle.parse(item["handle"])
    return Record(handle, tuple(v.stamped(now) for v in hasher.seal(None, values)))


def _content(record: Record) -> list:
    return [v.stamped(0) for v in record.values if v.type_key != SIGNATURE]
