"""``idres import --dsn|--data-dir``: records straight into the database with COPY, signed as the node
signs them, the change log filled, a chunk per transaction with the checkpoint advanced after each."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from registry.errors import IdresError, PrefixNotHomed
from registry.model import Handle, Record, check_indexes, fold
from registry.pg import bulk
from registry.pg.store import Store
from registry.value_json import parse_values_body
from registry.values import SIGNATURE

from ..core.authority import AuthoritySnapshot, CurrentAuthority
from ..core.seckeys import SecretHasher
from ..keys.keyring import Keyring
from ..keys.sealing import NodeSealer
from ..writes.operations import InputChecks
from .importer import Checkpoint, Line, Reader, Summary, groups

Progress = Callable[[Summary], None]
Report = Callable[[int, str], None]
Row = tuple  # (line number, key, prefix key, StoredRecord) of a record, or (line number, error message)


@dataclass(frozen=True)
class SealingSetup:
    """What a sealing process needs to sign as the node does: its keys and the prefixes it serves."""

    keys_path: str | None  # None: signing off
    lifetime: int
    homed: tuple[str, ...]
    iterations: int
    now: int
    checks: InputChecks  # the values and names the node's own writes accept


_worker: dict = {}


def _start_worker(setup: SealingSetup) -> None:
    sealer = None
    if setup.keys_path is not None:
        sealer = NodeSealer(Keyring(Path(setup.keys_path)), CurrentAuthority(AuthoritySnapshot(setup.homed)), setup.lifetime)
    _worker.update(store=Store(None, sealer), hasher=SecretHasher(setup.iterations), now=setup.now,  # type: ignore[arg-type]
                   checks=setup.checks)


def seal_lines(lines: list[tuple[int, dict]]) -> list[Row]:
    """In a sealing process: each line's record, signed, as the row to load; or why the line is refused."""
    store, hasher, now, checks = _worker["store"], _worker["hasher"], _worker["now"], _worker["checks"]
    rows: list[Row] = []
    records: list[tuple[int, Record]] = []
    for number, item in lines:
        try:
            records.append((number, _record(item, now, hasher, checks)))
        except IdresError as error:
            rows.append((number, error.message))
    for (number, record), sealed in zip(records, store.sealed_many([r for _, r in records])):
        rows.append((number, record.handle.key, record.handle.prefix_key, sealed))
    return rows


class Sealers:
    """Processes that parse and sign lines, one per CPU, so that signing is not bound to one core."""

    def __init__(self, setup: SealingSetup, processes: int) -> None:
        self._processes = max(1, processes)
        self._pool = ProcessPoolExecutor(self._processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker, initargs=(setup,))

    async def seal(self, lines: list[tuple[int, dict]]) -> list[Row]:
        loop = asyncio.get_running_loop()
        size = -(-len(lines) // self._processes)
        parts = [lines[i:i + size] for i in range(0, len(lines), size)]
        done = await asyncio.gather(*(loop.run_in_executor(self._pool, seal_lines, part) for part in parts))
        return [row for part in done for row in part]

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


async def import_direct(store: Store, reader: Reader, checkpoint: Checkpoint, *, chunk: int, sealers: Sealers,
                        progress: Progress, report: Report) -> Summary:
    if fold(reader.prefix) not in {fold(p) for p in await store.homed_prefixes()}:
        raise PrefixNotHomed(f"prefix {reader.prefix} is not homed here: run `idres prefix home {reader.prefix}` first")
    summary = Summary()
    for group in groups(reader.lines(checkpoint.offset, checkpoint.line), chunk):
        await _load(store, group, summary, sealers, report)
        checkpoint.advance(group[-1].end, group[-1].number)
        progress(summary)
    checkpoint.advance(checkpoint.offset, checkpoint.line, done=True)
    return summary


def _refuse(summary: Summary, report: Report, number: int, message: str) -> None:
    summary.fail(number, message)
    report(number, message)


async def _load(store: Store, group: list[Line], summary: Summary, sealers: Sealers, report: Report) -> None:
    summary.lines += len(group)
    for line in group:
        if line.error is not None:
            _refuse(summary, report, line.number, line.error)
    rows: dict[str, Row] = {}
    for row in await sealers.seal([(line.number, line.item) for line in group if line.item is not None]):
        if len(row) == 2:
            _refuse(summary, report, *row)
        elif row[1] in rows:
            _refuse(summary, report, row[0], f"{row[3].handle} is on line {rows[row[1]][0]} already")
        else:
            rows[row[1]] = row
    inserted, existing = await bulk.load(store.pool, [row[1:] for row in rows.values()])
    summary.created += len(inserted)
    for key, stored in existing.items():
        number, _, _, new = rows[key]
        if _content(stored.record) == _content(new.record):
            summary.unchanged += 1
        else:
            _refuse(summary, report, number, f"{new.handle} exists with other values")


def _record(item: dict, now: int, hasher: SecretHasher, checks: InputChecks) -> Record:
    """The record of a line, checked as a PUT of a new handle is (values by type, the identifier policy)."""
    values, _ = parse_values_body(item.get("values"))
    handle = Handle.parse(item["handle"], max_length=checks.limits.max_handle_length)
    check_indexes(values)
    checks.values(handle, values)
    checks.policy.check_new(handle)
    return Record(handle, tuple(v.stamped(now) for v in hasher.seal(None, values)))


def _content(record: Record) -> list:
    return [v.stamped(0) for v in record.values if v.type_key != SIGNATURE]
