"""Who answers for a handle: the immutable authority snapshot and its holder."""

from __future__ import annotations

import pytest

from registry.model import Handle
from registry.values import TRANSPORTS, Interface, Server, SiteInfo
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


SITE = SiteInfo(servers=(Server(1, "127.0.0.1", b"", (Interface(TRANSPORTS["HTTP"], 8001),)),))
OTHER_SITE = SiteInfo(servers=(Server(1, "127.0.0.2", b"", (Interface(TRANSPORTS["HTTP"], 8002),)),))


def test_the_longest_prefix_with_an_entry_answers_for_a_handle():
    machinery = Delegated("88.101", sites=(SITE,), prefix_sites=(SITE,))
    enterprise = Delegated("88.101.5", sites=(OTHER_SITE,), prefix_sites=(OTHER_SITE,))
    snapshot = AuthoritySnapshot(["88"], {"88.101": machinery, "88.101.5": enterprise})
    assert snapshot.answer_for(h("88/X")) == Homed("88")
    assert snapshot.answer_for(h("88.101/X")) is machinery
    assert snapshot.answer_for(h("88.101.5/X")) is enterprise
    assert snapshot.answer_for(h("88.101.5.7/X")).sites == (OTHER_SITE,)  # 88.101.5 before 88.101
    assert snapshot.answer_for(h("88.101.6/X")).sites == (SITE,)  # derived from 88.101: its HS_SITE.PREFIX
    assert snapshot.answer_for(h("88.102/X")) is UNKNOWN  # a homed prefix answers for its own handles only
    assert snapshot.answer_for(h("77.1/X")) is UNKNOWN
    assert not snapshot.covers(h("88.101/X")) and snapshot.homed == ("88",)


def test_prefix_records_are_answered_by_whoever_serves_the_parents_derived_prefixes():
    machinery = Delegated("88.101", sites=(SITE,), prefix_sites=(SITE,))
    snapshot = AuthoritySnapshot(["88"], {"88.101": machinery})
    assert snapshot.answer_for(h("0.NA/88.101")) == Homed("88")  # the parent keeps the delegation record
    assert snapshot.answer_for(h("0.NA/88.102")) == Homed("88")
    assert snapshot.answer_for(h("0.NA/88.101.5")).sites == (SITE,)  # the delegate keeps its derived prefixes' records
    assert snapshot.answer_for(h("0.NA/77")) is UNKNOWN
    assert AuthoritySnapshot(["88.101.5"], {"88.101.5": machinery}).answer_for(h("88.101.5/X")) == Homed("88.101.5")


def test_a_delegation_without_derived_sites_serves_its_own_handles_only():
    only_own = Delegated("88.101.5", sites=(SITE,))
    snapshot = AuthoritySnapshot(["88.101"], {"88.101.5": only_own})
    assert snapshot.answer_for(h("88.101.5/X")) is only_own
    assert snapshot.answer_for(h("88.101.5.7/X")) is UNKNOWN
    assert snapshot.answer_for(h("0.NA/88.101.5.7")) == Homed("88.101")


def test_delegations_are_replaced_in_new_snapshots_and_never_shadow_a_homed_prefix():
    first = AuthoritySnapshot(["88.101"])
    second = first.with_delegation("88.101.5", Delegated("88.101.5", sites=(SITE,)))
    assert first.answer_for(h("88.101.5/X")) is UNKNOWN and second.answer_for(h("88.101.5/X")).sites == (SITE,)
    assert second.with_delegation("88.101.5", None).answer_for(h("88.101.5/X")) is UNKNOWN
    assert second.with_delegation("88.101", Delegated("88.101", sites=(SITE,))).answer_for(h("88.101/X")) == Homed("88.101")
    assert [d.prefix for d in second.delegated()] == ["88.101.5"]


def test_a_mirrored_prefix_is_answered_here_and_is_not_this_nodes_to_sign():
    from resolver.core.authority import Mirrored

    machinery = Delegated("88.101", sites=(SITE,), prefix_sites=(SITE,))
    snapshot = AuthoritySnapshot([], {"88.101": machinery}, {"88.101": "http://origin"})
    copy = Mirrored("88.101", "http://origin")
    assert snapshot.answer_for(h("88.101/X")) == copy  # the copy, before the delegation
    assert snapshot.answer_for(h("0.NA/88.101")) == copy
    assert snapshot.answer_for(h("0.NA/88.101.5")) == copy  # derived prefixes' records come with it
    assert snapshot.answer_for(h("88.101.5/X")) is UNKNOWN  # as for a homed prefix: its own handles only
    assert snapshot.answers_locally(h("88.101/X")) and snapshot.is_mirrored("88.101") and not snapshot.is_homed("88.101")
    assert snapshot.covering(h("88.101/X")) is None  # the sealer signs only what is homed
    assert snapshot.delegated() == [] and snapshot.mirrored() == [copy] and len(snapshot) == 0
    assert snapshot.with_delegation("88.101", machinery).answer_for(h("88.101/X")) == copy
    assert snapshot.local_only().answer_for(h("88.101/X")) == copy


def test_escrow_a_parent_keeps_its_own_prefix_record_of_a_prefix_it_mirrors():
    from resolver.core.authority import Mirrored

    root = AuthoritySnapshot(["88"], mirrored={"88.101": "http://machinery"})
    assert root.answer_for(h("88.101/X")) == Mirrored("88.101", "http://machinery")
    assert root.answer_for(h("0.NA/88.101")) == Homed("88")  # its delegation record, signed by the root
    assert AuthoritySnapshot(["88.101"], mirrored={"88.101": "x"}).answer_for(h("88.101/X")) == Homed("88.101")
