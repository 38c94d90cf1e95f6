"""The Handle binary encoding (registry/encoding.py) against handle-wire.md §1."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.encoding import (
    DecodeError,
    Reader,
    Writer,
    decode_values,
    digest_bytes,
    encode_value,
    encode_values,
    read_value,
    write_value,
)
from registry.errors import InvalidValue
from registry.model import MAX_INDEX, TTL_ABSOLUTE, HandleValue, ValueRef

# --- strategies ----------------------------------------------------------------------------------

INT4 = st.integers(-(2**31), 2**31 - 1)
UINT4 = st.integers(0, 2**31 - 1)
_text_chars = st.characters(blacklist_categories=("Cs", "Cc"))
value_types = st.text(_text_chars, max_size=128)
refs = st.builds(ValueRef, index=INT4, handle=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
handle_values = st.builds(
    HandleValue,
    index=st.integers(1, MAX_INDEX),
    type=value_types,
    data=st.binary(max_size=300),
    ttl=INT4,
    ttl_type=st.sampled_from([0, 1]),
    permissions=st.integers(0, 15),
    timestamp=UINT4,
    references=st.lists(refs, max_size=3).map(tuple),
)

# --- known answers -------------------------------------------------------------------------------

URL_VALUE = HandleValue(
    index=1, type="URL", data=b"https://example.org/", ttl=86400, permissions=0x0E, timestamp=1700000000
)
URL_VALUE_BYTES = bytes.fromhex(
    "00000001"  # index
    "6553f100"  # timestamp 1700000000
    "00"  # ttlType relative
    "00015180"  # ttl 86400
    "0e"  # permissions 1110
    "00000003" + b"URL".hex()  # type
    + "00000014" + b"https://example.org/".hex()  # data (20 bytes)
    + "00000000"  # no references
)


def test_known_answer_url_value():
    assert encode_value(URL_VALUE) == URL_VALUE_BYTES
    assert len(URL_VALUE_BYTES) == 4 + 4 + 1 + 4 + 1 + 7 + 24 + 4


def test_known_answer_value_with_references_absolute_ttl_and_seckey_permissions():
    value = HandleValue(
        index=300,
        type="HS_SECKEY",
        data=b"\x00\xff",
        ttl=0x7FFFFFFF,
        ttl_type=TTL_ABSOLUTE,
        permissions=0x0C,
        timestamp=0,
        references=(ValueRef(300, "0.NA/88.101"), ValueRef(1, "a/b")),
    )
    expected = bytes.fromhex(
        "0000012c"  # index 300
        "00000000"  # timestamp
        "01"  # ttlType absolute
        "7fffffff"  # ttl
        "0c"  # permissions 1100
        "00000009" + b"HS_SECKEY".hex()
        + "00000002" + "00ff"
        + "00000002"  # two references: handle then index
        + "0000000b" + b"0.NA/88.101".hex() + "0000012c"
        + "00000003" + b"a/b".hex() + "00000001"
    )
    assert encode_value(value) == expected
    assert decode_values(b"\x00\x00\x00\x01" + expected) == [value]


def test_known_answer_negative_relative_ttl_and_utf8_type():
    value = HandleValue(index=2, type="é", data=b"", ttl=-1, timestamp=1)
    assert encode_value(value) == bytes.fromhex(
        "00000002" "00000001" "00" "ffffffff" "0e" "00000002" "c3a9" "00000000" "00000000"
    )


def test_digest_bytes_known_answer():
    assert digest_bytes(URL_VALUE) == URL_VALUE_BYTES[8:]
    assert digest_bytes(URL_VALUE)[:5] == bytes.fromhex("0000015180")  # starts at ttlType


def test_digest_bytes_ignore_index_and_timestamp_only():
    a = URL_VALUE
    assert digest_bytes(a) == digest_bytes(HandleValue(7, a.type, a.data, a.ttl, a.ttl_type, a.permissions, 5))
    for changed in (
        HandleValue(1, "URL", b"https://example.org/x", timestamp=a.timestamp),
        HandleValue(1, "URl", a.data, timestamp=a.timestamp),
        HandleValue(1, "URL", a.data, ttl=86401, timestamp=a.timestamp),
        HandleValue(1, "URL", a.data, ttl_type=1, timestamp=a.timestamp),
        HandleValue(1, "URL", a.data, permissions=0x0F, timestamp=a.timestamp),
        HandleValue(1, "URL", a.data, references=(ValueRef(1, "a/b"),), timestamp=a.timestamp),
    ):
        assert digest_bytes(changed) != digest_bytes(a)


@given(handle_values)
def test_digest_bytes_is_encoding_without_first_eight_bytes(value):
    encoded = encode_value(value)
    assert digest_bytes(value) == encoded[8:]
    assert encoded[:4] == value.index.to_bytes(4, "big")
    assert encoded[4:8] == value.timestamp.to_bytes(4, "big", signed=True)


def test_encode_values_known_answer():
    assert encode_values([]) == b"\x00\x00\x00\x00"
    assert encode_values([URL_VALUE, URL_VALUE.stamped(0)]) == (
        b"\x00\x00\x00\x02" + URL_VALUE_BYTES + bytes.fromhex("0000000100000000") + URL_VALUE_BYTES[8:]
    )


def test_decode_values_known_answer():
    assert decode_values(b"\x00\x00\x00\x01" + URL_VALUE_BYTES) == [URL_VALUE]
    assert decode_values(b"\x00\x00\x00\x00") == []


# --- round trips ---------------------------------------------------------------------------------


@given(handle_values)
def test_value_round_trip(value):
    r = Reader(encode_value(value))
    assert read_value(r) == value
    r.end()


@given(st.lists(handle_values, max_size=5))
def test_values_round_trip(values):
    assert decode_values(encode_values(values)) == values


@given(handle_values)
def test_write_value_matches_encode_value(value):
    w = Writer()
    write_value(w, value)
    assert w.getvalue() == encode_value(value)


# --- malformed input -----------------------------------------------------------------------------


@settings(max_examples=50)
@given(st.lists(handle_values, min_size=1, max_size=3), st.data())
def test_every_truncation_is_a_decode_error(values, data):
    encoded = encode_values(values)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(DecodeError):
        decode_values(encoded[:cut])


@given(st.lists(handle_values, max_size=3), st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_a_decode_error(values, extra):
    with pytest.raises(DecodeError, match="unexpected bytes"):
        decode_values(encode_values(values) + extra)


@given(st.binary(max_size=200))
def test_garbage_raises_only_invalid_value(garbage):
    try:
        decode_values(garbage)
    except InvalidValue:
        pass


def test_decode_error_is_an_invalid_value():
    assert issubclass(DecodeError, InvalidValue)
    with pytest.raises(DecodeError) as info:
        decode_values(b"\x00\x00")
    assert info.value.response_code == 202


def test_huge_count_is_rejected_before_reading():
    with pytest.raises(DecodeError, match="does not fit"):
        decode_values(b"\x7f\xff\xff\xff" + bytes(30))
    with pytest.raises(DecodeError):
        decode_values(b"\xff\xff\xff\xff")


def test_negative_and_oversized_field_lengths_are_rejected():
    with pytest.raises(DecodeError):
        Reader(b"\xff\xff\xff\xff").bytes()
    with pytest.raises(DecodeError):
        Reader(b"\x00\x00\x00\x05abc").bytes()
    with pytest.raises(DecodeError, match="limit"):
        Reader(b"\x7f\xff\xff\xff" + b"x" * 10).bytes()


def test_invalid_utf8_type_is_a_decode_error():
    bad = bytearray(encode_value(HandleValue(1, "ab", b"")))
    bad[14 + 4] = 0xFF  # first byte of the type text
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_values(b"\x00\x00\x00\x01" + bytes(bad))


def test_decoded_zero_index_is_an_invalid_value():
    bad = b"\x00\x00\x00\x00" + URL_VALUE_BYTES[4:]
    with pytest.raises(InvalidValue, match="positive"):
        decode_values(b"\x00\x00\x00\x01" + bad)


# --- Reader / Writer -----------------------------------------------------------------------------


def test_writer_known_answers():
    w = Writer().byte(0x1FF).int2(-2).uint2(0xFFFE).int4(-1).int8(2**40).raw(b"ab").bytes(b"xyz").text("é")
    assert w.getvalue() == bytes.fromhex(
        "ff" "fffe" "fffe" "ffffffff" "0000010000000000" "6162" "00000003" "78797a" "00000002" "c3a9"
    )


def test_reader_reads_what_writer_wrote():
    data = Writer().byte(7).int2(-2).uint2(0xFFFE).int4(-1).int8(-(2**40)).raw(b"ab").bytes(b"xyz").text("é").getvalue()
    r = Reader(data)
    assert r.byte() == 7
    assert r.int2() == -2
    assert r.uint2() == 0xFFFE
    assert r.int4() == -1
    assert r.int8() == -(2**40)
    assert r.raw(2) == b"ab"
    assert r.bytes() == b"xyz"
    assert r.remaining == 6
    assert r.text() == "é"
    assert r.remaining == 0
    r.end()


@pytest.mark.parametrize("method", ["byte", "int2", "uint2", "int4", "int8", "bytes", "text"])
def test_reader_reads_past_end_raise_decode_error(method):
    with pytest.raises(DecodeError, match="truncated"):
        getattr(Reader(b""), method)()


def test_reader_count_checks_min_item_size():
    assert Reader(b"\x00\x00\x00\x02" + bytes(16)).count(8) == 2
    with pytest.raises(DecodeError):
        Reader(b"\x00\x00\x00\x03" + bytes(16)).count(8)
    with pytest.raises(DecodeError):
        Reader(b"\xff\xff\xff\xff").count()


def test_reader_end_rejects_leftovers():
    r = Reader(b"\x01\x02")
    r.byte()
    with pytest.raises(DecodeError):
        r.end()


def test_reader_starts_at_given_offset():
    assert Reader(b"\x00\x00\x00\x00\x2a", pos=4).byte() == 42
