"""The one read decision (registry.access): which values a caller gets, with which response code."""

from __future__ import annotations

import pytest

from registry.access import ANONYMOUS, ReadQuery, Reader, decide, needs_read_right, whole_public
from registry.errors import AuthenticationNeeded, InsufficientPermissions, ResponseCode
from registry.model import Handle, HandleValue, Record

PRIVATE = 0x0C  # admin read and write only
HANDLE = "88.101/SN-1"


def record(*values: HandleValue) -> Record:
    return Record(Handle.parse(HANDLE), values)


URL = HandleValue(1, "URL", b"https://example.com/1")
MODEL = HandleValue(2, "MODEL", b"WM-1")
SECRET = HandleValue(300, "HS_SECKEY", b"s3cret", permissions=PRIVATE)
MIXED = record(URL, MODEL, SECRET)
ADMIN = Reader("300:88.101/ADMIN", may_read_private=True)
OTHER = Reader("300:88.101/OTHER", may_read_private=False)


def indexes(answer) -> list[int]:
    return [v.index for v in answer.values]


def test_a_missing_record_is_handle_not_found():
    answer = decide(None, ReadQuery(), ANONYMOUS, HANDLE)
    assert (answer.code, answer.values, answer.error) == (ResponseCode.HANDLE_NOT_FOUND, (), None)


def test_anonymous_readers_get_the_public_values_as_the_whole_public_view():
    answer = decide(MIXED, ReadQuery(), ANONYMOUS, HANDLE)
    assert (answer.code, indexes(answer), answer.whole_public) == (ResponseCode.SUCCESS, [1, 2], True)
    assert whole_public(ReadQuery(), ANONYMOUS)


def test_a_filter_selects_by_index_or_type_and_is_not_the_whole_view():
    answer = decide(MIXED, ReadQuery(indexes=(2,), types=("url",)), ANONYMOUS, HANDLE)
    assert (indexes(answer), answer.whole_public) == ([1, 2], False)
    assert not whole_public(ReadQuery(types=("URL",)), ANONYMOUS)


def test_nothing_selected_is_values_not_found():
    answer = decide(MIXED, ReadQuery(types=("EMAIL",)), ANONYMOUS, HANDLE)
    assert (answer.code, answer.values) == (ResponseCode.VALUES_NOT_FOUND, ())
    only_private = decide(record(SECRET), ReadQuery(), ANONYMOUS, HANDLE)
    assert (only_private.code, only_private.whole_public) == (ResponseCode.VALUES_NOT_FOUND, True)


def test_non_public_values_asked_for_anonymously_need_authentication():
    answer = decide(MIXED, ReadQuery(public_only=False), ANONYMOUS, HANDLE)
    assert isinstance(answer.error, AuthenticationNeeded) and answer.values == ()
    assert answer.code == ResponseCode.AUTHENTICATION_NEEDED and answer.error.handle == HANDLE


def test_a_caller_with_the_read_right_sees_every_value():
    assert needs_read_right(MIXED, ReadQuery(), ADMIN)
    answer = decide(MIXED, ReadQuery(), ADMIN, HANDLE)
    assert (indexes(answer), answer.whole_public) == ([1, 2, 300], False)


def test_a_caller_without_the_right_gets_the_public_values_unless_it_insisted():
    answer = decide(MIXED, ReadQuery(), OTHER, HANDLE)
    assert (indexes(answer), answer.whole_public, answer.error) == ([1, 2], True, None)
    insisted = decide(MIXED, ReadQuery(public_only=False), OTHER, HANDLE)
    assert isinstance(insisted.error, InsufficientPermissions)
    assert "300:88.101/OTHER may not read non-public values of 88.101/SN-1" == insisted.error.message


def test_public_only_keeps_even_an_admin_to_the_public_values():
    query = ReadQuery(public_only=True)
    assert not needs_read_right(MIXED, query, ADMIN)
    assert indexes(decide(MIXED, query, ADMIN, HANDLE)) == [1, 2]
    assert whole_public(query, ADMIN)


@pytest.mark.parametrize(
    ("values", "query", "reader", "needed"),
    [
        ((URL, MODEL), ReadQuery(), ADMIN, False),  # nothing private to see
        ((URL, SECRET), ReadQuery(types=("URL",)), ADMIN, False),  # the private value is not selected
        ((URL, SECRET), ReadQuery(indexes=(300,)), ADMIN, True),
        ((URL, SECRET), ReadQuery(), ANONYMOUS, False),  # anonymous readers have no rights to look up
    ],
)
def test_the_read_right_is_looked_up_only_when_the_answer_depends_on_it(values, query, reader, needed):
    assert needs_read_right(record(*values), query, reader) is needed
