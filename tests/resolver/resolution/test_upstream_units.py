"""Units of recursive resolution without the network: Via parsing and loop checks, coalesced reads,
and the memo of certificate signatures."""

from __future__ import annotations

import asyncio

import pytest

from registry.errors import ResolutionLoop
from registry.jws import Jws
from registry.model import Handle, HandleValue, Record
from registry.records import StoredRecord
from registry.trust import SignatureMemo
from resolver.resolution.batching import CoalescingSource
from resolver.resolution.upstream import Upstream, parse_via
from tests.registry.fixtures import ED_A, ED_B


def test_via_names_the_nodes_a_request_passed():
    assert parse_via(None) == ()
    assert parse_via("1.1 a:8000, HTTP/1.1 b:8001 (idres), 1.0 c") == ("a:8000", "b:8001", "c")
    assert parse_via("garbage") == ()


def upstream(name: str = "me:1", max_hops: int = 3) -> Upstream:
    return Upstream(None, node_name=name, timeout=1, deadline=2, max_hops=max_hops, anchor=None,  # type: ignore[arg-type]
                    certificates=None)  # type: ignore[arg-type]


def test_a_path_through_this_node_is_a_loop_named_in_full():
    with pytest.raises(ResolutionLoop, match="a:1 → ME:1 → b:2 → me:1"):
        upstream().check_path(("a:1", "ME:1", "b:2"))


def test_a_path_longer_than_the_hop_limit_is_refused():
    upstream(max_hops=3).check_path(("a", "b"))
    with pytest.raises(ResolutionLoop, match="more than the limit of 3"):
        upstream(max_hops=3).check_path(("a", "b", "c"))


class ManyStore:
    def __init__(self, *handles: str, fail: BaseException | None = None) -> None:
        self.records = {Handle.parse(h).key: StoredRecord.from_record(Record(Handle.parse(h), (HandleValue(1, "URL", b"u"),)))
                        for h in handles}
        self.calls: list[list[str]] = []
        self.fail = fail

    async def get_many(self, keys):
        self.calls.append(sorted(keys))
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return {k: self.records[k] for k in keys if k in self.records}


async def test_reads_asked_for_in_one_turn_of_the_loop_go_as_one_query():
    store = ManyStore("88.101/A", "88.101/B")
    source = CoalescingSource(store)
    found = await asyncio.gather(source.get("88.101/A"), source.get("88.101/B"), source.get("88.101/NOPE"), source.get("88.101/A"))
    assert [f.handle if f else None for f in found] == ["88.101/A", "88.101/B", None, "88.101/A"]
    assert store.calls == [["88.101/A", "88.101/B", "88.101/NOPE"]]
    await source.get("88.101/B")  # a later turn: a query of its own
    assert len(store.calls) == 2


async def test_batches_are_cut_at_their_size_and_a_failure_reaches_every_waiter():
    store = ManyStore(*(f"88.101/{n}" for n in range(5)))
    source = CoalescingSource(store, max_batch=2)
    await asyncio.gather(*(source.get(f"88.101/{n}") for n in range(5)))
    assert [len(c) for c in store.calls] == [2, 2, 1]
    failing = CoalescingSource(ManyStore(fail=OSError("down")))
    results = await asyncio.gather(failing.get("88.101/A"), failing.get("88.101/B"), return_exceptions=True)
    assert [type(r) for r in results] == [OSError, OSError]


def test_the_memo_answers_as_the_signature_check_does_and_stays_bounded():
    from registry.jws import sign_compact

    key_a, key_b = ED_A, ED_B
    good = Jws.parse(sign_compact(key_a, b'{"sub":"x"}'))
    memo = SignatureMemo(max_entries=2)
    assert memo.verified(good, key_a.public_key()) is True
    assert memo.verified(good, key_b.public_key()) is False  # a wrong key is not mistaken for the right one
    assert memo.verified(good, key_a.public_key()) is True and len(memo) == 2
    memo.verified(Jws.parse(sign_compact(key_b, b"{}")), key_b.public_key())
    assert len(memo) == 2
