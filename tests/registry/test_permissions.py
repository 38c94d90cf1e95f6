"""HS_ADMIN permission bits and authorisation helpers (registry/permissions.py), handle-http-api.md §3.3."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import InvalidValue
from registry.model import HandleValue, ValueRef
from registry.permissions import (
    DEFAULT_HANDLE_ADMIN,
    AdminGrant,
    AdminPermission as P,
    grants,
    identity_matches,
    needed_for_change,
    needed_for_removal,
)

# --- bits ----------------------------------------------------------------------------------------

SPEC_TABLE = [
    (0, "ADD_HANDLE", 0x0001),
    (1, "DELETE_HANDLE", 0x0002),
    (2, "ADD_DERIVED_PREFIX", 0x0004),
    (3, "DELETE_DERIVED_PREFIX", 0x0008),
    (4, "MODIFY_VALUE", 0x0010),
    (5, "REMOVE_VALUE", 0x0020),
    (6, "ADD_VALUE", 0x0040),
    (7, "MODIFY_ADMIN", 0x0080),
    (8, "REMOVE_ADMIN", 0x0100),
    (9, "ADD_ADMIN", 0x0200),
    (10, "READ_VALUE", 0x0400),
    (11, "LIST_HANDLES", 0x0800),
]


@pytest.mark.parametrize("bit, name, mask", SPEC_TABLE)
def test_bit_values_follow_the_spec_table(bit, name, mask):
    flag = P[name]
    assert int(flag) == mask == 1 << bit
    bits = flag.to_bits()
    assert len(bits) == 12
    # position 0 (leftmost) is bit 11, position 11 (rightmost) is bit 0
    assert bits[11 - bit] == "1"
    assert bits.count("1") == 1
    assert P.from_bits(bits) == flag


def test_there_are_exactly_twelve_bits():
    assert len(list(P)) == 12
    assert int(P.all()) == 0x0FFF


@pytest.mark.parametrize(
    "bits, mask",
    [
        ("011111110011", 0x07F3),
        ("111111111111", 0x0FFF),
        ("000000000000", 0),
        ("1", P.ADD_HANDLE),
        ("10", P.DELETE_HANDLE),
        ("1000000", P.ADD_VALUE),
        ("100000000000", P.LIST_HANDLES),
        ("*", 0x0FFF),
    ],
)
def test_from_bits_right_aligned(bits, mask):
    assert int(P.from_bits(bits)) == int(mask)


def test_common_strings():
    handle_admin = P.from_bits("011111110011")
    assert DEFAULT_HANDLE_ADMIN == handle_admin
    assert not handle_admin & P.LIST_HANDLES
    assert not handle_admin & (P.ADD_DERIVED_PREFIX | P.DELETE_DERIVED_PREFIX)
    for flag in (P.ADD_HANDLE, P.DELETE_HANDLE, P.MODIFY_VALUE, P.REMOVE_VALUE, P.ADD_VALUE,
                 P.MODIFY_ADMIN, P.REMOVE_ADMIN, P.ADD_ADMIN, P.READ_VALUE):
        assert handle_admin & flag
    assert P.all().to_bits() == "111111111111"
    assert P(0).to_bits() == "000000000000"


@pytest.mark.parametrize("bits", ["", "2", "1111111111111", "01 1", "**", "abc", "0b11"])
def test_from_bits_rejects_garbage(bits):
    with pytest.raises(InvalidValue):
        P.from_bits(bits)


@given(st.integers(0, 0x0FFF))
def test_bits_round_trip(mask):
    flag = P(mask)
    assert flag.to_bits() == format(mask, "012b")
    assert P.from_bits(flag.to_bits()) == flag
    assert P.from_bits(flag.to_bits().lstrip("0") or "0") == flag  # right-aligned, high bits default 0
    assert P.from_json(flag.to_bits()) == flag
    assert P.from_json(mask) == flag
    assert P.from_json([bool(mask >> i & 1) for i in range(12)]) == flag


# --- JSON forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, mask",
    [
        ("011111110011", 0x07F3),
        ("11", 0x0003),
        ("*", 0x0FFF),
        (True, 0x0FFF),
        (False, 0),
        (0, 0),
        (4095, 0x0FFF),
        (2035, 0x07F3),
        ([], 0),
        ([True], 0x0001),
        ([0, 1], 0x0002),
        ([1, 0, 1], 0x0005),
        ([None, "x", 2, 0.0], 0x0006),  # truthy elements
        ([True] * 12, 0x0FFF),
    ],
)
def test_from_json_forms(data, mask):
    assert int(P.from_json(data)) == mask


@pytest.mark.parametrize("data", [4096, -1, [True] * 13, {"a": 1}, None, 1.5, "x"])
def test_from_json_rejects_garbage(data):
    with pytest.raises(InvalidValue):
        P.from_json(data)


def test_names_lowest_bit_first():
    assert (P.ADD_VALUE | P.MODIFY_VALUE).names() == "MODIFY_VALUE+ADD_VALUE"
    assert P.ADD_HANDLE.names() == "ADD_HANDLE"
    assert P(0).names() == "nothing"
    assert P.all().names().split("+") == [name for _, name, _ in SPEC_TABLE]


# --- needed_for_change ---------------------------------------------------------------------------

URL = HandleValue(1, "URL", b"https://example.org/", timestamp=10)
EMAIL = HandleValue(2, "EMAIL", b"a@example.org", timestamp=10)
ADMIN = HandleValue(100, "HS_ADMIN", b"admin", timestamp=10)


def test_no_change_needs_nothing():
    assert needed_for_change([URL, ADMIN], [URL, ADMIN]) == P(0)
    assert needed_for_change([], []) == P(0)


def test_timestamp_only_change_needs_nothing():
    assert needed_for_change([URL], [URL.stamped(999)]) == P(0)


def test_adding_values():
    assert needed_for_change([URL], [URL, EMAIL]) == P.ADD_VALUE
    assert needed_for_change([URL], [URL, ADMIN]) == P.ADD_ADMIN
    assert needed_for_change([], [URL, ADMIN]) == P.ADD_VALUE | P.ADD_ADMIN


def test_modifying_values():
    assert needed_for_change([URL], [HandleValue(1, "URL", b"https://other/")]) == P.MODIFY_VALUE
    assert needed_for_change([URL], [HandleValue(1, "URL", URL.data, ttl=60)]) == P.MODIFY_VALUE
    assert needed_for_change([URL], [HandleValue(1, "URL", URL.data, permissions=0b1100)]) == P.MODIFY_VALUE
    assert needed_for_change([ADMIN], [HandleValue(100, "HS_ADMIN", b"other")]) == P.MODIFY_ADMIN


def test_removing_values():
    assert needed_for_change([URL, EMAIL], [URL]) == P.REMOVE_VALUE
    assert needed_for_change([URL, ADMIN], [URL]) == P.REMOVE_ADMIN
    assert needed_for_change([URL, ADMIN], []) == P.REMOVE_VALUE | P.REMOVE_ADMIN


def test_type_change_at_an_index_needs_both_modify_bits():
    turned_admin = HandleValue(1, "HS_ADMIN", b"admin")
    assert needed_for_change([URL], [turned_admin]) == P.MODIFY_ADMIN | P.MODIFY_VALUE
    turned_plain = HandleValue(100, "URL", b"x")
    assert needed_for_change([ADMIN], [turned_plain]) == P.MODIFY_VALUE | P.MODIFY_ADMIN


def test_admin_type_is_case_insensitive():
    lower = HandleValue(101, "hs_admin", b"x")
    assert needed_for_change([], [lower]) == P.ADD_ADMIN
    assert needed_for_removal([lower]) == P.REMOVE_ADMIN


def test_mixed_diff():
    new = [HandleValue(1, "URL", b"changed"), ADMIN, HandleValue(3, "NEW", b"n")]
    assert needed_for_change([URL, EMAIL, ADMIN], new) == P.MODIFY_VALUE | P.REMOVE_VALUE | P.ADD_VALUE


def test_needed_for_removal():
    assert needed_for_removal([]) == P(0)
    assert needed_for_removal([URL, EMAIL]) == P.REMOVE_VALUE
    assert needed_for_removal([URL, ADMIN]) == P.REMOVE_VALUE | P.REMOVE_ADMIN


# --- grants and identities -----------------------------------------------------------------------


def test_grants_returns_refs_holding_every_needed_bit():
    a = AdminGrant(ValueRef(300, "0.NA/88.101"), P.all())
    b = AdminGrant(ValueRef(301, "88.101/USER"), P.ADD_VALUE | P.MODIFY_VALUE)
    c = AdminGrant(ValueRef(302, "88.101/OTHER"), P.ADD_VALUE)
    assert grants([a, b, c], P.ADD_VALUE) == [a.ref, b.ref, c.ref]
    assert grants([a, b, c], P.ADD_VALUE | P.MODIFY_VALUE) == [a.ref, b.ref]
    assert grants([a, b, c], P.DELETE_HANDLE) == [a.ref]
    assert grants([b, c], P.DELETE_HANDLE) == []
    assert grants([b, c], P(0)) == [b.ref, c.ref]


def test_identity_matches():
    identity = ValueRef(300, "0.NA/88.101")
    assert identity_matches(ValueRef(300, "0.NA/88.101"), identity)
    assert identity_matches(ValueRef(300, "0.na/88.101"), identity)  # handles compare case-insensitively
    assert identity_matches(ValueRef(0, "0.NA/88.101"), identity)  # index 0 = any index
    assert not identity_matches(ValueRef(301, "0.NA/88.101"), identity)
    assert not identity_matches(ValueRef(300, "0.NA/88.102"), identity)
    assert not identity_matches(ValueRef(300, "0.NA/88.101é"), ValueRef(300, "0.NA/88.101É"))


def test_admin_grant_equality_and_repr():
    a = AdminGrant(ValueRef(300, "a/b"), P.ADD_VALUE)
    assert a == AdminGrant(ValueRef(300, "a/b"), P.ADD_VALUE)
    assert a != AdminGrant(ValueRef(300, "a/b"), P.ADD_VALUE, legacy=True)
    assert a != AdminGrant(ValueRef(301, "a/b"), P.ADD_VALUE)
    assert a != AdminGrant(ValueRef(300, "a/b"), P.ADD_ADMIN)
    assert a != "300:a/b"
    assert repr(a) == "AdminGrant(300:a/b, 000001000000)"


def test_a_non_public_value_sent_unchanged_still_needs_modify():
    from registry.model import HandleValue
    from registry.permissions import AdminPermission, needed_for_change

    secret = HandleValue(300, "HS_SECKEY", b"s", permissions=0x0C)
    public = HandleValue(1, "URL", b"u")
    assert needed_for_change([public, secret], [public, secret]) == AdminPermission.MODIFY_VALUE
    assert needed_for_change([public], [public]) == AdminPermission(0)
