"""Who may read which values: the one read decision that every transport renders. Pure.

A resolution asks for a record's values, perhaps filtered by index and type, perhaps only the public
ones. What it gets depends on the caller: an anonymous reader sees public values; an authenticated
caller sees the rest only with the READ_VALUE right (from HS_ADMIN). ``decide`` turns a record, the
query and the caller's standing into an answer: a response code and the values to send, or the error
to send instead. Looking up the caller's rights is I/O and happens before, and only when
``needs_read_right`` says the answer depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import AuthenticationNeeded, IdresError, InsufficientPermissions, ResponseCode
from .model import HandleValue, Record


@dataclass(frozen=True, slots=True)
class ReadQuery:
    """What was asked: indexes and types (empty: all values) and ``publicOnly`` (None: not given)."""

    indexes: tuple[int, ...] = ()
    types: tuple[str, ...] = ()
    public_only: bool | None = None

    @property
    def unfiltered(self) -> bool:
        return not self.indexes and not self.types


@dataclass(frozen=True, slots=True)
class Reader:
    """The caller's standing: its identity (None: anonymous), and whether it may read non-public values."""

    identity: str | None = None
    may_read_private: bool = False

    @property
    def authenticated(self) -> bool:
        return self.identity is not None


ANONYMOUS = Reader()


@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """The response code and the values to send; or ``error``, to send instead of any values.

    ``whole_public`` is true when the values are exactly the record's public values, in order: a
    transport may then send a rendering it prepared earlier instead of rendering them again.
    """

    code: ResponseCode
    values: tuple[HandleValue, ...] = ()
    error: IdresError | None = None
    whole_public: bool = False


def public_only(query: ReadQuery, reader: Reader) -> bool:
    """Whether only public values are asked for: ``publicOnly`` as given, by default for anonymous readers."""
    return query.public_only if query.public_only is not None else not reader.authenticated


def whole_public(query: ReadQuery, reader: Reader) -> bool:
    """Whether the answer is the record's public values, all of them, whatever the record holds."""
    return query.unfiltered and public_only(query, reader)


def needs_read_right(record: Record | None, query: ReadQuery, reader: Reader) -> bool:
    """Whether the answer depends on the caller's READ_VALUE right: non-public values were selected
    by an authenticated caller who did not ask for public values only."""
    if record is None or not reader.authenticated or public_only(query, reader):
        return False
    return any(not v.public_read for v in record.select(query.indexes, query.types))


def decide(record: Record | None, query: ReadQuery, reader: Reader, handle: str) -> ReadAnswer:
    """The answer to ``query`` for ``record`` (None: the handle does not exist), as ``reader`` may see it."""
    if record is None:
        return ReadAnswer(ResponseCode.HANDLE_NOT_FOUND)
    only_public = public_only(query, reader)
    selected: Sequence[HandleValue] = record.select(query.indexes, query.types)
    if not only_public and any(not v.public_read for v in selected):
        if not reader.authenticated:
            return _refused(AuthenticationNeeded("non-public values were asked for without credentials", handle=handle))
        if not reader.may_read_private and query.public_only is False:
            return _refused(InsufficientPermissions(f"{reader.identity} may not read non-public values of {handle}", handle=handle))
        only_public = not reader.may_read_private
    if only_public:
        selected = [v for v in selected if v.public_read]
    code = ResponseCode.SUCCESS if selected else ResponseCode.VALUES_NOT_FOUND
    return ReadAnswer(code, tuple(selected), whole_public=only_public and query.unfiltered)


def _refused(error: IdresError) -> ReadAnswer:
    return ReadAnswer(error.response_code, error=error)
