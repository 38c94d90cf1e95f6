"""Who answers for a handle: the immutable authority snapshot and its holder."""

from __future__ import annotations

import pytest

from registry.model import Handle
from resolver.core.authority import UNKNOWN, AuthoritySnapshot, CurrentAuthority, Delegated, Homed


def h(text: str) -> Handle:
    return Handle.parse(text)


@pytest.mark.parametrize(
    ("homed", "handle", "covering"),
    [
        (["88.101"], "88.101/SN-1", "88.101"),
        (["88.101"], "88.102/SN-1", None),
        (["88.101"], "88.101.5/SN-1", None),
        (["88.101"], "0.NA/88.101", "88.101"),
        (["88.101"], "88.101", "88.101"),  # a bare prefix names 0.NA/88.101
        (["88.101"], "0.NA/88.101.5", "88.101"),
        (["88.101"], "0.NA/88.101.5.7", "88.101"),
        (["88.101", "88.101.5"], "0.NA/88.101.5.7", "88.101.5"),
        (["88"], "0.NA/88.101.5", "88"),
        (["88.101"], "0.NA/88", None),
        (["88.101"], "0.NA/88.1011", None),
        (["88.101"], "0.NA/88.10", None),
        (["88.101.5"], "0.NA/88.101", None),
        (["88.AbC"], "0.na/88.abc.1", "88.AbC"),
        (["0.NA"], "0.NA/88.101", None),
    ],
)
def test_homed_prefixes_covering(homed, handle, covering):
    prefixes = AuthoritySnapshot(homed)
    assert prefixes.covering(h(handle)) == covering
    assert prefixes.covers(h(handle)) is (covering is not None)


def test_homed_prefixes_replace_and_add():
    current = CurrentAuthority(AuthoritySnapshot(["88.101"]))
    first = current.snapshot
    assert first.is_homed("88.101")
    current.replace(AuthoritySnapshot(["88.200"]))
    prefixes = current.snapshot
    assert not prefixes.is_homed("88.101")
    assert not prefixes.covers(h("88.101/X"))
    assert prefixes.covers(h("88.200/X"))
    assert first.is_homed("88.101") and not first.covers(h("88.200/X"))  # a snapshot never changes
    prefixes = prefixes.with_homed("88.300")
    assert prefixes.covers(h("88.200/X")) and prefixes.covers(h("88.300/X"))
    assert len(prefixes) == 2
    assert prefixes.is_homed("88.300") and prefixes.is_homed("88.200")
    assert not current.snapshot.is_homed("88.300")  # with_homed made a new snapshot; the current one is as it was


def test_the_answer_names_homed_delegated_or_unknown_by_the_nearest_entry():
    child = Delegated("88.101.5")
    snapshot = AuthoritySnapshot(["88.101"], {"88.101.5": child})
    assert snapshot.answer_for(h("88.101/X")) == Homed("88.101")
    assert snapshot.answer_for(h("88.101.5/X")) is child
    assert snapshot.answer_for(h("0.NA/88.101.5.7")) is child  # the nearest ancestor with an entry
    assert snapshot.answer_for(h("0.NA/88.101.6")) == Homed("88.101")
    assert snapshot.answer_for(h("77.1/X")) is UNKNOWN
    assert not snapshot.covers(h("88.101.5/X")) and snapshot.homed == ("88.101",)
    assert AuthoritySnapshot(["88.101.5"], {"88.101.5": child}).answer_for(h("88.101.5/X")) == Homed("88.101.5")
