"""Handles, values and records (registry/model.py): parsing, ASCII folding, validation, type matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import (
    IdresError,
    InvalidHandle,
    InvalidValue,
    ResponseCode,
    ValueAlreadyExists,
)
from registry.model import (
    DEFAULT_PERMISSIONS,
    DEFAULT_TTL,
    MAX_INDEX,
    TTL_ABSOLUTE,
    TTL_RELATIVE,
    Handle,
    HandleValue,
    Record,
    ValueRef,
    ancestors,
    check_indexes,
    fold,
    parse_prefix,
    prefix_record_handle,
    type_matches,
)

# --- fold ----------------------------------------------------------------------------------------


def _ascii_upper(text: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def test_fold_upper_cases_ascii_letters_only():
    assert fold("88.101/sn-000123") == "88.101/SN-000123"
    assert fold("0.na/x") == "0.NA/X"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("straße", "STRAßE"),  # str.upper() would give STRASSE
        ("café", "CAFé"),  # é stays lower case
        ("ǆ", "ǆ"),  # titlecase digraph untouched
        ("ﬁ", "ﬁ"),  # ligature not expanded
        ("ı", "ı"),  # dotless i not mapped to I
        ("µ", "µ"),  # micro sign not mapped to Greek capital mu
    ],
)
def test_fold_leaves_non_ascii_characters_alone(text, expected):
    assert fold(text) == expected


@given(st.text())
def test_fold_is_ascii_upper_for_any_text(text):
    assert fold(text) == _ascii_upper(text)


# --- Handle.parse --------------------------------------------------------------------------------


def test_parse_keeps_spelling_and_folds_key():
    h = Handle.parse("88.101.5/sn-000123")
    assert h.text == "88.101.5/sn-000123"
    assert h.key == "88.101.5/SN-000123"
    assert h.prefix == "88.101.5"
    assert h.suffix == "sn-000123"
    assert str(h) == "88.101.5/sn-000123"
    assert h.prefix_key == "88.101.5"
    assert not h.is_prefix_record
    assert h.authority == "88.101.5"


def test_handles_differing_in_ascii_case_share_a_key():
    assert Handle.parse("88.101/Abc").key == Handle.parse("88.101/aBC").key


@pytest.mark.parametrize("a, b", [("88.101/straße", "88.101/STRASSE"), ("88.101/é", "88.101/É")])
def test_handles_differing_in_non_ascii_case_have_different_keys(a, b):
    assert Handle.parse(a).key != Handle.parse(b).key


def test_non_ascii_characters_are_unchanged_in_the_key():
    h = Handle.parse("88.101/straße-é")
    assert h.key == "88.101/STRAßE-é"


def test_handle_without_slash_is_a_prefix_handle():
    h = Handle.parse("88.101")
    assert h.key == Handle.parse("0.NA/88.101").key == "0.NA/88.101"
    assert h.prefix == "0.NA"
    assert h.suffix == "88.101"
    assert h.is_prefix_record
    assert h.authority == "88.101"


def test_na_prefix_is_case_insensitive():
    h = Handle.parse("0.na/X")
    assert h.key == "0.NA/X"
    assert h.text == "0.na/X"  # spelling echoed
    assert h.is_prefix_record
    assert h.authority == "X"


def test_further_slashes_belong_to_the_suffix():
    h = Handle.parse("0.NA/21.T1/x")
    assert h.prefix == "0.NA"
    assert h.suffix == "21.T1/x"


def test_empty_handle_is_invalid():
    with pytest.raises(InvalidHandle) as info:
        Handle.parse("")
    assert info.value.response_code == ResponseCode.INVALID_HANDLE == 102
    assert info.value.message == "Empty handle invalid"


def test_missing_prefix_is_invalid():
    with pytest.raises(InvalidHandle, match="no prefix"):
        Handle.parse("/x")


def test_empty_suffix_is_invalid_by_default():
    with pytest.raises(InvalidHandle, match="no suffix"):
        Handle.parse("88.101/")


def test_empty_suffix_allowed_when_asked():
    h = Handle.parse("88.101/", allow_empty_suffix=True)
    assert h.text == "88.101/"
    assert h.prefix == "88.101"
    assert h.suffix == ""


def test_na_handle_without_prefix_is_invalid_even_with_empty_suffix_allowed():
    with pytest.raises(InvalidHandle):
        Handle.parse("0.NA/", allow_empty_suffix=True)


@pytest.mark.parametrize("ch", ["\x00", "\x01", "\t", "\n", "\r", "\x1f", "\x7f"])
def test_control_characters_are_invalid(ch):
    with pytest.raises(InvalidHandle, match="control character"):
        Handle.parse(f"88.101/a{ch}b")


def test_control_characters_are_invalid_in_a_prefix_handle():
    with pytest.raises(InvalidHandle):
        Handle.parse("88.\n101")


def test_invalid_utf8_is_invalid_handle():
    text = b"88.101/\xff\xfe".decode("utf-8", "surrogateescape")
    with pytest.raises(InvalidHandle, match="UTF-8") as info:
        Handle.parse(text)
    assert info.value.response_code == 102


def test_lone_surrogate_is_invalid_handle():
    with pytest.raises(InvalidHandle):
        Handle.parse("88.101/\ud800")


def test_length_limit_default_is_255():
    prefix = "88.101/"
    ok = prefix + "a" * (255 - len(prefix))
    assert Handle.parse(ok).text == ok
    with pytest.raises(InvalidHandle, match="255"):
        Handle.parse(ok + "a")


def test_length_limit_is_configurable():
    assert Handle.parse("88.101/abc", max_length=10).suffix == "abc"
    with pytest.raises(InvalidHandle):
        Handle.parse("88.101/abcd", max_length=10)
    long = "88.101/" + "a" * 1000
    assert Handle.parse(long, max_length=2000).text == long


def test_length_limit_applies_to_the_expanded_prefix_handle():
    # 250 characters become 0.NA/ + 250 = 255: fits; one more does not
    assert Handle.parse("9" * 250).text == "0.NA/" + "9" * 250
    with pytest.raises(InvalidHandle):
        Handle.parse("9" * 251)


def test_handle_errors_are_idres_errors():
    with pytest.raises(IdresError):
        Handle.parse("/")


@given(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="/\x7f"), min_size=1, max_size=20),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\x7f"), min_size=1, max_size=20),
)
def test_parse_key_is_fold_of_text(prefix, suffix):
    h = Handle.parse(f"{prefix}/{suffix}")
    assert h.key == fold(f"{prefix}/{suffix}")
    assert (h.prefix, h.suffix) == (prefix, suffix)
    assert Handle.parse(_ascii_upper(h.text)).key == h.key
    assert Handle.parse(h.text.lower() if h.text.isascii() else h.text).key == h.key


# --- prefixes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["88.101", "0.NA/88.101", "0.na/88.101"])
def test_parse_prefix_accepts_both_spellings(text):
    assert parse_prefix(text) == "88.101"


@pytest.mark.parametrize("text", ["", "0.NA/", "88.101/x", "88.\x00101"])
def test_parse_prefix_rejects_bad_prefixes(text):
    with pytest.raises(InvalidHandle):
        parse_prefix(text)


def test_prefix_record_handle():
    h = prefix_record_handle("88.101")
    assert h.text == "0.NA/88.101"
    assert h.is_prefix_record


def test_ancestors_longest_first():
    assert ancestors("88.101.5") == ["88.101.5", "88.101", "88"]
    assert ancestors("88") == ["88"]


# --- ValueRef ------------------------------------------------------------------------------------


def test_value_ref_parse_and_str():
    ref = ValueRef.parse("300:0.NA/88.101")
    assert ref == ValueRef(300, "0.NA/88.101")
    assert (ref.index, ref.handle) == (300, "0.NA/88.101")
    assert str(ref) == "300:0.NA/88.101"
    assert ref.key == (300, "0.NA/88.101")
    assert ValueRef.parse("300:0.na/88.101").key == ref.key


def test_value_ref_handle_may_contain_colons():
    assert ValueRef.parse("1:88.101/a:b") == ValueRef(1, "88.101/a:b")


@pytest.mark.parametrize("text", ["", "300", "300:", "x:88.101/a", "300:nohandle", ":88.101/a", "-1:88.101/a"])
def test_value_ref_parse_rejects_malformed(text):
    with pytest.raises(InvalidHandle):
        ValueRef.parse(text)


def test_value_ref_parse_rejects_non_ascii_digits_with_registry_error():
    # DESIGN §8: bad input is an error value, never an unhandled exception (this parses Basic user names)
    with pytest.raises(InvalidHandle):
        ValueRef.parse("²:88.101/a")


# --- HandleValue ---------------------------------------------------------------------------------


def test_handle_value_defaults():
    v = HandleValue(1, "URL", b"https://example.org/")
    assert v.ttl == DEFAULT_TTL == 86400
    assert v.ttl_type == TTL_RELATIVE == 0
    assert v.permissions == DEFAULT_PERMISSIONS == 0b1110
    assert v.timestamp == 0
    assert v.references == ()
    assert v.public_read
    assert v.type_key == "URL"


@pytest.mark.parametrize("index", [0, -1, -(2**31), MAX_INDEX + 1])
def test_handle_value_index_must_be_positive_int4(index):
    with pytest.raises(InvalidValue) as info:
        HandleValue(index, "URL", b"x")
    assert info.value.response_code == ResponseCode.INVALID_VALUE == 202


def test_handle_value_index_bounds_accepted():
    assert HandleValue(1, "URL", b"").index == 1
    assert HandleValue(MAX_INDEX, "URL", b"").index == 2**31 - 1


def test_handle_value_type_length_limit():
    assert HandleValue(1, "T" * 128, b"").type == "T" * 128
    with pytest.raises(InvalidValue):
        HandleValue(1, "T" * 129, b"")


@pytest.mark.parametrize("value_type", ["UR\nL", "URL\x00", "\ud800"])
def test_handle_value_type_rejects_control_and_surrogates(value_type):
    with pytest.raises(InvalidValue):
        HandleValue(1, value_type, b"")


@pytest.mark.parametrize(
    "kwargs",
    [{"ttl_type": 2}, {"ttl": 2**31}, {"ttl": -(2**31) - 1}, {"permissions": 16}, {"permissions": -1}],
)
def test_handle_value_rejects_out_of_range_fields(kwargs):
    with pytest.raises(InvalidValue):
        HandleValue(1, "URL", b"", **kwargs)


def test_type_key_is_ascii_folded():
    assert HandleValue(1, "hs_admin", b"").type_key == "HS_ADMIN"
    assert HandleValue(1, "typé", b"").type_key == "TYPé"


@pytest.mark.parametrize("perms, public", [(0b1110, True), (0b1100, False), (0b0010, True), (0b0001, False)])
def test_public_read_bit(perms, public):
    assert HandleValue(1, "URL", b"", permissions=perms).public_read is public


def test_same_content_ignores_only_timestamp():
    a = HandleValue(1, "URL", b"x", timestamp=100)
    assert a.same_content(a.stamped(200))
    assert a.stamped(200).timestamp == 200
    assert a.stamped(200) != a
    assert not a.same_content(HandleValue(1, "URL", b"y", timestamp=100))
    assert not a.same_content(HandleValue(1, "URL", b"x", ttl=1, timestamp=100))
    assert not a.same_content(HandleValue(1, "URL", b"x", permissions=0b1100, timestamp=100))
    assert not a.same_content(HandleValue(1, "URL", b"x", references=(ValueRef(1, "a/b"),), timestamp=100))


def test_ttl_seconds_relative_and_absolute():
    assert HandleValue(1, "URL", b"", ttl=3600).ttl_seconds(now=10**9) == 3600
    assert HandleValue(1, "URL", b"", ttl=-5).ttl_seconds(now=0) == 0
    absolute = HandleValue(1, "URL", b"", ttl=1000, ttl_type=TTL_ABSOLUTE)
    assert absolute.ttl_seconds(now=400) == 600
    assert absolute.ttl_seconds(now=1000) == 0
    assert absolute.ttl_seconds(now=5000) == 0


# --- type matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value_type, queries, expected",
    [
        ("URL", ["URL"], True),
        ("URL", ["url"], True),
        ("url", ["URL"], True),
        ("EMAIL", ["URL"], False),
        ("T", ["T."], True),
        ("T.x", ["T."], True),
        ("t.X.y", ["T."], True),
        ("T.x", ["t."], True),
        ("T.x", ["T"], False),
        ("TX", ["T."], False),
        ("T", ["T.x"], False),
        ("URL", [], False),
        ("URL", ["EMAIL", "url"], True),
    ],
)
def test_type_matches(value_type, queries, expected):
    key = HandleValue(1, value_type, b"").type_key
    assert type_matches(key, queries) is expected


# --- Record --------------------------------------------------------------------------------------


def _record(*values: HandleValue) -> Record:
    return Record(Handle.parse("88.101/r"), tuple(values))


def test_record_sorts_values_by_index():
    rec = _record(HandleValue(100, "HS_ADMIN", b""), HandleValue(4, "A", b""), HandleValue(2222, "B", b""), HandleValue(1, "URL", b""))
    assert [v.index for v in rec.values] == [1, 4, 100, 2222]


def test_record_rejects_duplicate_indexes():
    with pytest.raises(ValueAlreadyExists, match="Index conflict for 1") as info:
        _record(HandleValue(1, "URL", b"a"), HandleValue(1, "EMAIL", b"b"))
    assert info.value.response_code == 201


def test_check_indexes_accepts_distinct():
    check_indexes([HandleValue(1, "A", b""), HandleValue(2, "A", b"")])


def test_record_lookup_helpers():
    rec = _record(
        HandleValue(1, "URL", b"u"),
        HandleValue(2, "url", b"u2", permissions=0b1100, ttl=60),
        HandleValue(3, "T.sub", b"t", ttl=30),
        HandleValue(100, "HS_ADMIN", b"a"),
    )
    assert rec.value_at(3).type == "T.sub"
    assert rec.value_at(4) is None
    assert [v.index for v in rec.of_type("Url")] == [1, 2]
    assert [v.index for v in rec.public_values()] == [1, 3, 100]
    assert [v.index for v in rec.select()] == [1, 2, 3, 100]
    assert [v.index for v in rec.select(indexes=[100])] == [100]
    assert [v.index for v in rec.select(types=["t."])] == [3]
    assert [v.index for v in rec.select(indexes=[1], types=["HS_ADMIN"])] == [1, 100]
    assert rec.select(indexes=[42]) == []
    assert rec.cache_ttl(now=0) == 30
    assert rec.free_index() == 4
    assert rec.free_index(100) == 101
    assert rec.free_index(5) == 5


def test_record_empty_cache_ttl_and_with_values():
    rec = _record()
    assert rec.cache_ttl(now=0) == DEFAULT_TTL
    replaced = rec.with_values([HandleValue(2, "B", b""), HandleValue(1, "A", b"")])
    assert [v.index for v in replaced.values] == [1, 2]
    assert replaced.handle == rec.handle
    assert rec.values == ()


@given(st.sets(st.integers(1, MAX_INDEX), max_size=10))
def test_record_values_are_always_sorted(indexes):
    values = [HandleValue(i, "T", b"") for i in indexes]
    rec = _record(*reversed(values))
    assert [v.index for v in rec.values] == sorted(indexes)
    assert rec.free_index() not in indexes


@settings(max_examples=50)
@given(st.lists(st.integers(1, 50), min_size=2, max_size=10).filter(lambda xs: len(set(xs)) < len(xs)))
def test_record_with_any_duplicate_is_rejected(indexes):
    with pytest.raises(ValueAlreadyExists):
        _record(*(HandleValue(i, "T", b"") for i in indexes))
