"""The identifier policy and the IDIS-strict profile (registry/identifiers.py): each rule refuses what it
names, with a message naming the rule and the character, and lets everything else through."""

from __future__ import annotations

import pytest

from registry.errors import InvalidHandle, InvalidValue, ResponseCode
from registry.identifiers import IdentifierPolicy, character_problem, nfc_problem
from registry.model import Handle, HandleValue, ValueRef
from registry.permissions import AdminGrant, AdminPermission
from registry.values import admin_to_bytes, vlist_to_bytes

POLICY = IdentifierPolicy()
OFF = IdentifierPolicy(enabled=False)
STRICT = IdentifierPolicy(idis_strict_prefixes=("88.101",))

REFUSED = [
    # (handle, message fragment)
    ("88.101/a\x85b", "contains a control character (U+0085) at position 9"),
    ("88.101/a\x9fb", "control character (U+009F)"),
    ("88.101/a\u202eb", "contains a bidirectional control character (U+202E) at position 9"),
    ("88.101/a\u202ab", "(U+202A)"),
    ("88.101/a\u2066b", "(U+2066)"),
    ("88.101/a\u2069b", "(U+2069)"),
    ("88.101/a\u200eb", "bidirectional control character (U+200E)"),
    ("88.101/a\u200fb", "(U+200F)"),
    ("88.101/a\u061cb", "(U+061C)"),
    ("88.101/a\u200bb", "contains a zero-width character (U+200B) at position 9"),
    ("88.101/a\u200cb", "zero-width character (U+200C)"),
    ("88.101/a\u200db", "zero-width character (U+200D)"),
    ("88.101/a\u2060b", "zero-width character (U+2060)"),
    ("88.101/\ufeffab", "zero-width character (U+FEFF) at position 8"),
    ("88\u200b.101/ab", "zero-width character (U+200B) at position 3"),
    ("88.101/.", "a '.' segment in its suffix (segment 1)"),
    ("88.101/..", "a '..' segment"),
    ("88.101/a/./b", "a '.' segment in its suffix (segment 2)"),
    ("88.101/a/../b", "a '..' segment in its suffix (segment 2)"),
    ("88.101//a", "an empty segment"),
    ("88.101/a//b", "an empty segment ('//' or a '/' at an end) in its suffix (segment 2)"),
    ("88.101/a/", "an empty segment"),
    ("88.101/e\u0301", "not in Unicode normalisation form NFC: U+0065 U+0301 at position 8 is U+00E9 in NFC"),
    ("88.101/\u212b", "U+212B at position 8 is U+00C5 in NFC"),
]


@pytest.mark.parametrize("text, fragment", REFUSED, ids=[repr(t) for t, _ in REFUSED])
def test_the_policy_refuses_new_handles_naming_the_rule(text, fragment):
    handle = Handle.parse(text)
    with pytest.raises(InvalidHandle) as caught:
        POLICY.check_new(handle)
    assert caught.value.response_code == ResponseCode.INVALID_HANDLE
    assert fragment in caught.value.message
    assert caught.value.message.endswith("refused by the identifier policy (docs/identifiers.md)")
    assert caught.value.handle == text
    OFF.check_new(handle)  # switched off, nothing of this is refused


def test_the_message_shows_invisible_characters_escaped():
    with pytest.raises(InvalidHandle) as caught:
        POLICY.check_new(Handle.parse("88.101/a\u200bb"))
    assert caught.value.message == ("handle 88.101/a\\u200bb contains a zero-width character (U+200B) at position 9: "
                                    "refused by the identifier policy (docs/identifiers.md)")


ALLOWED = [
    "88.101/SN-000123", "88.101.5/Straße-é", "88.101/a.b.c", "88.101/a/b/c", "88.101/.hidden", "88.101/a..b",
    "88.101/产品.2024.0001", "88.101/emoji-\U0001F600", "0.NA/88.101.5", "88.101/x y", "88.101/%2E%2E",
]


@pytest.mark.parametrize("text", ALLOWED)
def test_the_policy_lets_ordinary_handles_through(text):
    POLICY.check_new(Handle.parse(text))


def test_character_and_nfc_helpers():
    assert character_problem("plain") is None
    assert nfc_problem("é") is None
    assert character_problem("x\u200d") == "contains a zero-width character (U+200D) at position 2"


def admin(handle: str) -> HandleValue:
    return HandleValue(100, "HS_ADMIN", admin_to_bytes(AdminGrant(ValueRef(200, handle), AdminPermission(0x0FFF))))


@pytest.mark.parametrize("value, fragment", [
    (admin("0.NA/88.101\u200b"), "value 100 (HS_ADMIN): admin handle: 0.NA/88.101\\u200b contains a zero-width character"),
    (HandleValue(200, "HS_VLIST", vlist_to_bytes([ValueRef(300, "88.101/AD\u202eMIN")])), "member 300:88.101/AD\\u202eMIN"),
    (HandleValue(1, "URL", b"x", references=(ValueRef(1, "88.101/e\u0301"),)), "not in Unicode normalisation form NFC"),
])
def test_handles_that_values_name_pass_the_character_rules(value, fragment):
    with pytest.raises(InvalidValue) as caught:
        POLICY.check_values(Handle.parse("88.101/X"), [value])
    assert caught.value.response_code == ResponseCode.INVALID_VALUE
    assert fragment in caught.value.message
    OFF.check_values(Handle.parse("88.101/X"), [value])


# --- the IDIS-strict profile ---------------------------------------------------------------------

STRICT_REFUSED = [
    ("88.101/" + "a" * 122, "is 129 characters long; the limit is 128"),
    ("88.101/a/b", "has 2 '/' characters"),
    ("88.101/a~b", "contains '~' (U+007E) at position 9"),
    ("88.101/a b", "contains ' ' (U+0020)"),
    ("88.101/产品", "contains '产' (U+4EA7) at position 8"),
    ("88.101/.ab", "starts or ends with '.'"),
    ("88.101/ab.", "starts or ends with '.'"),
    ("88.101.x/ab", "names prefix 88.101.x, whose fields after 88.101 must be 1–128 digits"),
    ("88.101..5/ab", "fields after 88.101"),
    ("0.NA/88.101.5a", "fields after 88.101"),
]


@pytest.mark.parametrize("text, fragment", STRICT_REFUSED, ids=[t[:30] for t, _ in STRICT_REFUSED])
def test_the_idis_strict_profile_refuses_on_its_prefixes(text, fragment):
    handle = Handle.parse(text)
    with pytest.raises(InvalidHandle) as caught:
        STRICT.check_new(handle)
    assert fragment in caught.value.message
    assert "refused by the IDIS-strict profile of prefix 88.101 (docs/identifiers.md#the-idis-strict-profile)" in caught.value.message
    POLICY.check_new(handle)  # not strict here: the general policy lets it through


@pytest.mark.parametrize("text", ["88.101/SN-000123_A.2024", "88.101.5/X", "88.101.5.77/a-b", "0.NA/88.101.5", "88.101/" + "a" * 121])
def test_the_idis_strict_profile_accepts_its_grammar(text):
    STRICT.check_new(Handle.parse(text))


@pytest.mark.parametrize("text", ["88.102/a~b", "88.1010/a b", "99/产品"])
def test_the_idis_strict_profile_stays_on_its_prefixes(text):
    assert STRICT.strict_prefix(Handle.parse(text)) is None
    STRICT.check_new(Handle.parse(text))


def test_the_idis_strict_profile_holds_with_the_general_policy_off():
    with pytest.raises(InvalidHandle, match="IDIS-strict"):
        IdentifierPolicy(enabled=False, idis_strict_prefixes=("88.101",)).check_new(Handle.parse("88.101/a\u200bb"))


def test_the_idis_strict_profile_limits_string_values():
    handle = Handle.parse("88.101/X")
    STRICT.check_values(handle, [HandleValue(1, "URL", b"x" * 255), HandleValue(2, "NAME", "产" .encode() * 255),
                                 HandleValue(3, "HS_SECKEY", b"s" * 1000)])
    with pytest.raises(InvalidValue) as caught:
        STRICT.check_values(handle, [HandleValue(2, "URL", b"x" * 256)])
    assert caught.value.message == ("value 2 (URL) is 256 characters long; the limit is 255: refused by the IDIS-strict "
                                    "profile of prefix 88.101 (docs/identifiers.md#the-idis-strict-profile)")
    POLICY.check_values(handle, [HandleValue(2, "URL", b"x" * 256)])
