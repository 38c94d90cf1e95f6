"""Handle values in Handle.Net's REST JSON (registry/value_json.py), handle-http-api.md §3."""

from __future__ import annotations

import base64

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import values as V
from registry.encoding import Writer
from registry.errors import IdresError, InvalidValue, ProtocolError, ResponseCode
from registry.model import MAX_INDEX, TTL_ABSOLUTE, TTL_RELATIVE, HandleValue, ValueRef
from registry.permissions import AdminGrant, AdminPermission as P
from registry.value_json import (
    data_to_json,
    looks_textual,
    parse_data,
    parse_value,
    parse_values_body,
    render_values,
    value_to_json,
)

# 2026-11-24T13:28:22Z and 2023-11-14T22:13:20Z as epoch seconds (date -u -d ... +%s)
T_2026 = 1795526902
T_2023 = 1700000000

ADMIN_BYTES = bytes.fromhex("07f3" "0000000b" + b"0.NA/88.101".hex() + "000000c8")


def value(**item):
    base = {"index": 1, "type": "URL", "data": "https://example.org/"}
    base.update(item)
    return parse_value(base)


# =================================================================================================
# input
# =================================================================================================


def test_minimal_value_with_bare_string_data():
    v = value()
    assert v == HandleValue(1, "URL", b"https://example.org/")
    assert (v.ttl, v.ttl_type, v.permissions, v.timestamp, v.references) == (86400, TTL_RELATIVE, 0b1110, 0, ())


def test_bare_string_data_is_utf8():
    assert value(data="é€").data == "é€".encode("utf-8")
    assert value(data="").data == b""


@pytest.mark.parametrize("fmt", ["string", "STRING", "String"])
def test_string_format(fmt):
    assert value(data={"format": fmt, "value": "héllo"}).data == "héllo".encode()


@pytest.mark.parametrize("fmt", ["base64", "BASE64", "Base64"])
def test_base64_format(fmt):
    assert value(data={"format": fmt, "value": "AAH/"}).data == b"\x00\x01\xff"


@pytest.mark.parametrize("fmt", ["hex", "HEX", "Hex"])
def test_hex_format(fmt):
    assert value(data={"format": fmt, "value": "00ff0A"}).data == b"\x00\xff\x0a"


@pytest.mark.parametrize("fmt", ["admin", "ADMIN", "Admin"])
def test_admin_format(fmt):
    data = {"format": fmt, "value": {"handle": "0.NA/88.101", "index": 200, "permissions": "011111110011"}}
    assert value(type="HS_ADMIN", data=data).data == ADMIN_BYTES


def test_admin_format_pyhandle_style_numeric_string_index():
    data = {"format": "admin", "value": {"handle": "0.NA/88.101", "index": "200", "permissions": "011111110011"}}
    assert value(index=100, type="HS_ADMIN", data=data).data == ADMIN_BYTES


@pytest.mark.parametrize(
    "perms, mask",
    [
        ("011111110011", 0x7F3),
        ("11", 0x003),  # right-aligned: missing high bits are 0
        ("*", 0xFFF),
        (True, 0xFFF),
        (False, 0x000),
        (2035, 0x7F3),  # integer: its binary digits
        ([1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0], 0x7F3),  # element i = bit i
        ([True], 0x001),
    ],
)
def test_admin_format_permission_forms(perms, mask):
    data = {"format": "admin", "value": {"handle": "0.NA/88.101", "index": 200, "permissions": perms}}
    encoded = value(type="HS_ADMIN", data=data).data
    assert encoded[:2] == mask.to_bytes(2, "big")
    assert encoded[2:] == ADMIN_BYTES[2:]


@pytest.mark.parametrize("fmt", ["vlist", "VLIST", "VList"])
def test_vlist_format(fmt):
    data = {"format": fmt, "value": [{"handle": "0.NA/88.101", "index": 300}, {"handle": "88.101/g", "index": "1"}]}
    assert value(type="HS_VLIST", data=data).data == bytes.fromhex(
        "00000002" "0000000b" + b"0.NA/88.101".hex() + "0000012c" "00000008" + b"88.101/g".hex() + "00000001"
    )


@pytest.mark.parametrize("fmt", ["site", "SITE", "Site"])
def test_site_format(fmt):
    site = {
        "version": 1,
        "protocolVersion": "2.10",
        "serialNumber": 1,
        "primarySite": True,
        "multiPrimary": False,
        "attributes": [{"name": "desc", "value": "x"}],
        "servers": [
            {
                "serverId": 1,
                "address": "127.0.0.1",
                "interfaces": [{"query": True, "admin": True, "protocol": "TCP", "port": 2641}],
            }
        ],
    }
    data = value(type="HS_SITE", data={"format": fmt, "value": site}).data
    assert data == bytes.fromhex(
        "0001" "020a" "0001" "80" "02" "00000000"
        "00000001" "00000004" + b"desc".hex() + "00000001" + b"x".hex()
        + "00000001" "00000001" + "00" * 12 + "7f000001" "00000000" "00000001" "03" "01" "00000a51"
    )


@pytest.mark.parametrize("fmt", ["key", "KEY", "Key"])
def test_key_format(fmt):
    data = value(type="HS_PUBKEY", data={"format": fmt, "value": {"kty": "RSA", "n": "gAE", "e": "AQAB"}}).data
    assert data == bytes.fromhex("0000000b" + b"RSA_PUB_KEY".hex() + "0000" "00000003" "010001" "00000003" "008001" "00000000")


def test_formats_do_not_depend_on_the_value_type():
    # the format decides the bytes; a URL value may carry base64 data and so on
    assert value(type="URL", data={"format": "base64", "value": "AA=="}).data == b"\x00"


def test_unknown_format_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="Unexpected type") as info:
        value(data={"format": "xml", "value": "<x/>"})
    assert info.value.response_code == ResponseCode.PROTOCOL_ERROR == 4
    assert "xml" in info.value.message


@pytest.mark.parametrize("bad", ["AAH", "not base64!", "AA==AA", "AAH/\n"])
def test_bad_base64_is_invalid_value(bad):
    with pytest.raises(InvalidValue, match="base64") as info:
        value(index=7, data={"format": "base64", "value": bad})
    assert "7" in info.value.message
    assert info.value.response_code == 202


@pytest.mark.parametrize("bad", ["zz", "abc", "0x00"])
def test_bad_hex_is_invalid_value(bad):
    with pytest.raises(InvalidValue, match="hex") as info:
        value(index=7, data={"format": "hex", "value": bad})
    assert "7" in info.value.message


@pytest.mark.parametrize("fmt", ["string", "base64", "hex"])
def test_text_formats_need_a_string(fmt):
    with pytest.raises(InvalidValue):
        value(data={"format": fmt, "value": 5})


@pytest.mark.parametrize(
    "data",
    [
        {"format": "admin", "value": {"index": 200}},
        {"format": "admin", "value": {"handle": "0.NA/88.101", "index": 1, "permissions": "x"}},
        {"format": "vlist", "value": {"handle": "a/b"}},
        {"format": "site", "value": {"servers": [{"address": "not-an-ip"}]}},
        {"format": "key", "value": {"kty": "EC"}},
    ],
)
def test_bad_structured_data_is_invalid_value(data):
    with pytest.raises(InvalidValue):
        value(type="X", data=data)


@pytest.mark.parametrize("data", [5, None, True, ["a"], {"format": "string"}])
def test_data_of_wrong_shape_is_a_protocol_error(data):
    with pytest.raises(ProtocolError):
        value(data=data)


# --- required fields and index -------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["index", "type", "data"])
def test_missing_required_key_is_a_protocol_error(missing):
    item = {"index": 1, "type": "URL", "data": "x"}
    del item[missing]
    with pytest.raises(ProtocolError) as info:
        parse_value(item)
    assert repr(missing) in info.value.message or missing in info.value.message
    assert info.value.response_code == 4


def test_all_missing_keys_are_named():
    with pytest.raises(ProtocolError) as info:
        parse_value({"foo": 1})
    for key in ("index", "type", "data"):
        assert key in info.value.message


@pytest.mark.parametrize("index", [0, -1, "0", "-5"])
def test_non_positive_index_is_invalid_value_202(index):
    with pytest.raises(InvalidValue, match="Indexes must be positive") as info:
        value(index=index)
    assert info.value.response_code == ResponseCode.INVALID_VALUE == 202


def test_index_above_int4_is_invalid_value():
    with pytest.raises(InvalidValue):
        value(index=MAX_INDEX + 1)
    assert value(index=MAX_INDEX).index == MAX_INDEX


@pytest.mark.parametrize("index, expected", [(5, 5), ("5", 5), ("200", 200), (" 12 ", 12)])
def test_index_as_number_or_numeric_string(index, expected):
    assert value(index=index).index == expected


@pytest.mark.parametrize("index", ["x", "", 1.5, None, True, [1]])
def test_non_numeric_index_is_a_protocol_error(index):
    with pytest.raises(ProtocolError):
        value(index=index)


@pytest.mark.parametrize("index", ["--1", "-1-", "²"])
def test_malformed_numeric_looking_index_is_a_registry_error(index):
    # DESIGN §8: bad input gets a clear registry error, never an unhandled ValueError (a 500)
    with pytest.raises(IdresError):
        value(index=index)


@pytest.mark.parametrize("value_type", [5, None, ["URL"]])
def test_type_must_be_a_string(value_type):
    with pytest.raises(ProtocolError):
        value(type=value_type)


@pytest.mark.parametrize("item", [None, "x", 5, [1, "URL", "x"]])
def test_value_must_be_an_object(item):
    with pytest.raises(ProtocolError):
        parse_value(item)


def test_unknown_keys_are_ignored_and_timestamp_is_not_taken():
    v = value(foo="bar", nested={"a": 1}, timestamp="2020-01-01T00:00:00Z", responseCode=1)
    assert v == HandleValue(1, "URL", b"https://example.org/")


# --- permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "perms, expected",
    [
        ("1110", 0b1110),
        ("1100", 0b1100),
        ("0000", 0b0000),
        ("1111", 0b1111),
        ("10", 0b1110),  # publicRead=1 publicWrite=0; left bits keep the default 11
        ("01", 0b1101),
        ("00", 0b1100),
        ("1", 0b1111),
        ("0", 0b1110),
        ("011", 0b1011),
        ("*", 0b1111),
    ],
)
def test_value_permissions_right_aligned_over_default(perms, expected):
    assert value(permissions=perms).permissions == expected


def test_value_permissions_default():
    assert value().permissions == 0b1110


@pytest.mark.parametrize("perms", ["", "11111", "12", "rw", 14, True, ["1"]])
def test_bad_value_permissions(perms):
    with pytest.raises(InvalidValue):
        value(permissions=perms)


# --- ttl -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [0, 1, 3600, 86400, -1])
def test_ttl_number_is_relative(ttl):
    v = value(ttl=ttl)
    assert (v.ttl_type, v.ttl) == (TTL_RELATIVE, ttl)


@pytest.mark.parametrize(
    "text, epoch",
    [
        ("2026-11-24T13:28:22Z", T_2026),
        ("2023-11-14T22:13:20Z", T_2023),
        ("2023-11-14T23:13:20+01:00", T_2023),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_ttl_iso_string_is_absolute(text, epoch):
    v = value(ttl=text)
    assert (v.ttl_type, v.ttl) == (TTL_ABSOLUTE, epoch)


@pytest.mark.parametrize("ttl", ["tomorrow", "2026-13-01T00:00:00Z", True, None, [1], {"s": 1}])
def test_bad_ttl_is_invalid_value(ttl):
    with pytest.raises(InvalidValue):
        value(ttl=ttl)


def test_ttl_out_of_int4_range_is_invalid_value():
    with pytest.raises(InvalidValue):
        value(ttl=2**31)
    with pytest.raises(InvalidValue):
        value(ttl="2100-01-01T00:00:00Z")


# --- references ----------------------------------------------------------------------------------


def test_references():
    v = value(references=[{"handle": "0.NA/88.101", "index": 300}, {"handle": "88.101/x"}])
    assert v.references == (ValueRef(300, "0.NA/88.101"), ValueRef(0, "88.101/x"))
    assert value(references=None).references == ()
    assert value(references=[]).references == ()


@pytest.mark.parametrize(
    "refs",
    [
        [{"handle": "a/b", "index": 1}, None],  # trailing comma
        {"handle": "a/b", "index": 1},
        "a/b",
        [{"index": 1}],
        [{"handle": "a/b", "index": -1}],
        [{"handle": "a/b", "index": "x"}],
        [{"handle": "a/b", "index": True}],
    ],
)
def test_bad_references(refs):
    with pytest.raises(InvalidValue):
        value(references=refs)


# --- robustness: structured data whose numbers do not fit the wire --------------------------------


def test_admin_index_beyond_int4_is_invalid_value():
    # handle-wire.md §1: the admin index is an int4. DESIGN §8: a clear registry error, not struct.error
    data = {"format": "admin", "value": {"handle": "0.NA/88.101", "index": 2**40, "permissions": "1"}}
    with pytest.raises(InvalidValue):
        value(index=100, type="HS_ADMIN", data=data)


def test_vlist_entry_that_is_not_an_object_is_invalid_value():
    with pytest.raises(InvalidValue):
        value(type="HS_VLIST", data={"format": "vlist", "value": ["300:0.NA/88.101"]})


# --- bodies --------------------------------------------------------------------------------------


def test_body_forms():
    item = {"index": 1, "type": "URL", "data": "x"}
    expected = [HandleValue(1, "URL", b"x")]
    assert parse_values_body([item]) == (expected, None)
    assert parse_values_body({"values": [item]}) == (expected, None)
    assert parse_values_body({"values": [item], "handle": "88.101/x", "other": 1}) == (expected, "88.101/x")
    assert parse_values_body(item) == (expected, None)
    assert parse_values_body(None) == ([], None)
    assert parse_values_body({"values": None}) == ([], None)
    assert parse_values_body([]) == ([], None)


@pytest.mark.parametrize("body", ["x", 5, {"handle": "a/b"}, {"index": 1, "type": "URL"}, {"values": {}}, {"values": [], "handle": 5}])
def test_bad_bodies_are_protocol_errors(body):
    with pytest.raises(ProtocolError):
        parse_values_body(body)


def test_body_keeps_order_of_values():
    values, _ = parse_values_body([{"index": i, "type": "T", "data": str(i)} for i in (100, 111, 2222, 333, 4)])
    assert [v.index for v in values] == [100, 111, 2222, 333, 4]


def test_parse_data_directly():
    assert parse_data("x", 1) == b"x"
    assert parse_data({"format": "hex", "value": "41"}, 1) == b"A"


# =================================================================================================
# output
# =================================================================================================


def test_output_known_answer_and_key_order():
    v = HandleValue(1, "URL", b"https://example.org/", timestamp=T_2026)
    out = value_to_json(v)
    assert out == {
        "index": 1,
        "type": "URL",
        "data": {"format": "string", "value": "https://example.org/"},
        "ttl": 86400,
        "timestamp": "2026-11-24T13:28:22Z",
    }
    assert list(out) == ["index", "type", "data", "ttl", "timestamp"]
    assert list(out["data"]) == ["format", "value"]


def test_output_with_unusual_permissions_and_references_key_order():
    v = HandleValue(
        300, "HS_SECKEY", b"\x00\x01\xff", permissions=0b1100, timestamp=T_2023, references=(ValueRef(1, "88.101/x"),)
    )
    out = value_to_json(v)
    assert list(out) == ["index", "type", "data", "permissions", "ttl", "timestamp", "references"]
    assert out["permissions"] == "1100"
    assert out["data"] == {"format": "base64", "value": "AAH/"}
    assert out["timestamp"] == "2023-11-14T22:13:20Z"
    assert out["references"] == [{"handle": "88.101/x", "index": 1}]
    assert list(out["references"][0]) == ["handle", "index"]


@pytest.mark.parametrize("perms, text", [(0b0000, "0000"), (0b0001, "0001"), (0b1111, "1111"), (0b0110, "0110")])
def test_output_permissions_four_chars(perms, text):
    assert value_to_json(HandleValue(1, "T", b"", permissions=perms))["permissions"] == text


def test_output_omits_default_permissions_zero_timestamp_and_empty_references():
    out = value_to_json(HandleValue(1, "T", b"x"))
    assert "permissions" not in out
    assert "timestamp" not in out
    assert "references" not in out


def test_output_absolute_ttl_is_iso():
    out = value_to_json(HandleValue(1, "T", b"", ttl=T_2026, ttl_type=TTL_ABSOLUTE))
    assert out["ttl"] == "2026-11-24T13:28:22Z"
    assert value_to_json(HandleValue(1, "T", b"", ttl=T_2026))["ttl"] == T_2026


@pytest.mark.parametrize(
    "data, fmt, shown",
    [
        (b"secret", "string", "secret"),
        ("pässwörd".encode(), "string", "pässwörd"),
        (b"line\tone\r\nline two", "string", "line\tone\r\nline two"),
        (b"", "string", ""),
        (b"\x00\x01\xff", "base64", "AAH/"),
        (b"\xff", "base64", "/w=="),
        (b"a\x00b", "base64", "YQBi"),
        (b"\x7f", "base64", "fw=="),
        (b"\xc3", "base64", "ww=="),  # truncated UTF-8
    ],
)
def test_seckey_like_data_rendered_as_string_or_base64(data, fmt, shown):
    out = value_to_json(HandleValue(300, "HS_SECKEY", data, permissions=0b1100))
    assert out["data"] == {"format": fmt, "value": shown}


def test_admin_output():
    out = data_to_json(HandleValue(100, "HS_ADMIN", ADMIN_BYTES))
    assert out == {"format": "admin", "value": {"handle": "0.NA/88.101", "index": 200, "permissions": "011111110011"}}
    assert list(out["value"]) == ["handle", "index", "permissions"]


def test_admin_output_legacy():
    legacy = bytes.fromhex("000007f3") + ADMIN_BYTES[2:]
    out = data_to_json(HandleValue(100, "HS_ADMIN", legacy))
    assert out["value"]["legacyByteLength"] is True
    assert out["value"]["permissions"] == "011111110011"


def test_reserved_types_match_case_insensitively():
    assert data_to_json(HandleValue(100, "hs_admin", ADMIN_BYTES))["format"] == "admin"


def test_vlist_output():
    data = V.vlist_to_bytes([ValueRef(300, "0.NA/88.101")])
    assert data_to_json(HandleValue(200, "HS_VLIST", data)) == {
        "format": "vlist",
        "value": [{"handle": "0.NA/88.101", "index": 300}],
    }


@pytest.mark.parametrize("site_type", ["HS_SITE", "HS_SITE.PREFIX", "HS_NA_DELEGATE"])
def test_site_output(site_type):
    site = V.SiteInfo(servers=(V.Server(1, "127.0.0.1", b"", (V.Interface(1, 2641, True, True),)),))
    out = data_to_json(HandleValue(1, site_type, site.to_bytes()))
    assert out["format"] == "site"
    assert out["value"]["servers"][0]["address"] == "127.0.0.1"
    assert out["value"]["protocolVersion"] == "2.10"


def test_pubkey_output_is_jwk():
    key = rsa.generate_private_key(65537, 2048).public_key().public_numbers()
    n = key.n.to_bytes(key.n.bit_length() // 8 + 1, "big")  # Java form: leading zero byte
    assert n[0] == 0
    data = Writer().text("RSA_PUB_KEY").int2(0).bytes(b"\x01\x00\x01").bytes(n).getvalue()
    out = data_to_json(HandleValue(300, "HS_PUBKEY", data))
    assert out["format"] == "key"
    assert out["value"]["kty"] == "RSA"
    assert out["value"]["e"] == "AQAB"
    assert out["value"]["n"] == base64.urlsafe_b64encode(n[1:]).rstrip(b"=").decode()


@pytest.mark.parametrize("value_type", ["HS_ADMIN", "HS_VLIST", "HS_SITE", "HS_PUBKEY"])
def test_undecodable_reserved_data_falls_back(value_type):
    assert data_to_json(HandleValue(1, value_type, b"plain text")) == {"format": "string", "value": "plain text"}
    assert data_to_json(HandleValue(1, value_type, b"\x00\x01")) == {"format": "base64", "value": "AAE="}


def test_looks_textual():
    assert looks_textual(b"abc") == "abc"
    assert looks_textual("é".encode()) == "é"
    assert looks_textual(b"\x00") is None
    assert looks_textual(b"\x1b[0m") is None
    assert looks_textual(b"\xff") is None


def test_render_values_sorted_by_index():
    values = [HandleValue(i, "T", str(i).encode(), timestamp=T_2023) for i in (100, 111, 2222, 333, 4)]
    rendered = orjson.loads(render_values(values))
    assert [v["index"] for v in rendered] == [4, 100, 111, 333, 2222]
    assert rendered[0] == {"index": 4, "type": "T", "data": {"format": "string", "value": "4"}, "ttl": 86400, "timestamp": "2023-11-14T22:13:20Z"}
    assert render_values([]) == b"[]"


# =================================================================================================
# round trips: value → JSON → value
# =================================================================================================

RESERVED = {"HS_ADMIN", "HS_VLIST", "HS_SITE", "HS_SITE.PREFIX", "HS_NA_DELEGATE", "HS_PUBKEY"}
INT4 = st.integers(-(2**31), 2**31 - 1)
INDEX = st.integers(0, 2**31 - 1)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
plain_types = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40).filter(
    lambda t: t.upper() not in RESERVED
)
references = st.lists(st.builds(ValueRef, index=st.integers(0, MAX_INDEX), handle=texts), max_size=3).map(tuple)


@st.composite
def ttls(draw):
    ttl_type = draw(st.sampled_from([TTL_RELATIVE, TTL_ABSOLUTE]))
    return ttl_type, draw(INT4)


@st.composite
def json_values(draw, types, data):
    ttl_type, ttl = draw(ttls())
    return HandleValue(
        index=draw(st.integers(1, MAX_INDEX)),
        type=draw(types),
        data=draw(data),
        ttl=ttl,
        ttl_type=ttl_type,
        permissions=draw(st.integers(0, 15)),
        timestamp=draw(st.integers(0, 2**31 - 1)),
        references=draw(references),
    )


def _through_json(v: HandleValue) -> HandleValue:
    wire = orjson.loads(orjson.dumps(value_to_json(v)))
    return parse_value(wire)


def _unstamped(v: HandleValue) -> HandleValue:
    return v.stamped(0)


@settings(max_examples=300)
@given(json_values(plain_types, st.binary(max_size=200)))
def test_plain_value_json_round_trip(v):
    out = value_to_json(v)
    assert out["data"]["format"] in ("string", "base64")
    assert _through_json(v) == _unstamped(v)


@given(json_values(plain_types, st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=50).map(str.encode)))
def test_textual_data_is_rendered_as_string(v):
    assert value_to_json(v)["data"] == {"format": "string", "value": v.data.decode()}


admin_data = st.builds(
    AdminGrant,
    ref=st.builds(ValueRef, index=INDEX, handle=texts),
    permissions=st.integers(0, 0xFFF).map(P),
    legacy=st.booleans(),
).map(V.admin_to_bytes)
vlist_data = st.lists(st.builds(ValueRef, index=INDEX, handle=texts), max_size=4).map(V.vlist_to_bytes)


@given(json_values(st.sampled_from(["HS_ADMIN", "hs_admin"]), admin_data))
def test_admin_value_json_round_trip(v):
    assert value_to_json(v)["data"]["format"] == "admin"
    assert _through_json(v) == _unstamped(v)


@given(json_values(st.just("HS_VLIST"), vlist_data))
def test_vlist_value_json_round_trip(v):
    assert value_to_json(v)["data"]["format"] == "vlist"
    assert _through_json(v) == _unstamped(v)


@st.composite
def site_data(draw):
    iface = st.builds(V.Interface, transport=st.integers(0, 3), port=st.integers(0, 65535), query=st.booleans(), admin=st.booleans())
    server = st.builds(
        V.Server,
        server_id=st.integers(1, 100),
        address=st.ip_addresses(v=4).map(str),
        public_key=st.sampled_from([b"", Writer().text("Ed25519_PUB_KEY").int2(0).bytes(bytes(32)).getvalue()]),
        interfaces=st.lists(iface, max_size=3).map(tuple),
    )
    site = V.SiteInfo(
        servers=tuple(draw(st.lists(server, max_size=2))),
        serial=draw(st.integers(0, 32767)),
        primary=draw(st.booleans()),
        multi_primary=draw(st.booleans()),
        hash_option=draw(st.integers(0, 2)),
        hash_filter=draw(texts),
        attributes=tuple(draw(st.lists(st.tuples(texts, texts), max_size=2))),
    )
    return site.to_bytes()


@settings(deadline=None)
@given(json_values(st.sampled_from(["HS_SITE", "HS_SITE.PREFIX", "HS_NA_DELEGATE"]), site_data()))
def test_site_value_json_round_trip(v):
    assert value_to_json(v)["data"]["format"] == "site"
    assert _through_json(v) == _unstamped(v)


@given(json_values(st.just("HS_PUBKEY"), st.binary(min_size=32, max_size=32).map(
    lambda x: Writer().text("Ed25519_PUB_KEY").int2(0).bytes(x).getvalue()
)))
def test_pubkey_value_json_round_trip(v):
    assert value_to_json(v)["data"]["format"] == "key"
    assert _through_json(v) == _unstamped(v)


@settings(max_examples=50)
@given(st.lists(json_values(plain_types, st.binary(max_size=20)), max_size=6, unique_by=lambda v: v.index))
def test_render_then_parse_body(values):
    parsed, named = parse_values_body(orjson.loads(render_values(values)))
    assert named is None
    assert parsed == [_unstamped(v) for v in sorted(values, key=lambda v: v.index)]
