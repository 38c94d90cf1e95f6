"""HS_ADMIN permission bits and the decision "may this identity do that to this record". Pure.

The 12-character string form is most significant bit first (handle-http-api.md §3.3): the rightmost
character is ADD_HANDLE, the leftmost LIST_HANDLES.
"""

from __future__ import annotations

from enum import IntFlag
from typing import Iterable, Sequence

from .errors import InvalidValue
from .model import HandleValue, ValueRef, fold

ADMIN_TYPE = "HS_ADMIN"
VLIST_TYPE = "HS_VLIST"


class AdminPermission(IntFlag):
    ADD_HANDLE = 0x0001
    DELETE_HANDLE = 0x0002
    ADD_DERIVED_PREFIX = 0x0004
    DELETE_DERIVED_PREFIX = 0x0008
    MODIFY_VALUE = 0x0010
    REMOVE_VALUE = 0x0020
    ADD_VALUE = 0x0040
    MODIFY_ADMIN = 0x0080
    REMOVE_ADMIN = 0x0100
    ADD_ADMIN = 0x0200
    READ_VALUE = 0x0400
    LIST_HANDLES = 0x0800

    @classmethod
    def all(cls) -> "AdminPermission":
        return cls(0x0FFF)

    def names(self) -> str:
        """``MODIFY_VALUE+ADD_VALUE``: the bits by name, lowest first."""
        return "+".join(flag.name for flag in type(self) if flag & self and flag.name) or "nothing"

    def to_bits(self) -> str:
        return format(int(self), "012b")

    @classmethod
    def from_bits(cls, bits: str) -> "AdminPermission":
        """A bit string aligned to the right; missing high bits are 0; ``*`` is every bit."""
        if bits == "*":
            return cls.all()
        if not bits or len(bits) > 12 or set(bits) - {"0", "1"}:
            raise InvalidValue(f"admin permissions {bits!r} are not a string of up to twelve 0s and 1s")
        return cls(int(bits, 2))

    @classmethod
    def from_json(cls, data: object) -> "AdminPermission":
        """Every JSON form Handle.Net accepts: bit string, ``*``, boolean, integer mask, array of bits."""
        if isinstance(data, bool):
            return cls.all() if data else cls(0)
        if isinstance(data, int):
            if not 0 <= data <= 0x0FFF:
                raise InvalidValue(f"admin permission mask {data} is out of range 0..4095")
            return cls(data)
        if isinstance(data, str):
            return cls.from_bits(data)
        if isinstance(data, list) and len(data) <= 12:
            mask = 0
            for bit, flag in enumerate(data):
                if flag:
                    mask |= 1 << bit
            return cls(mask)
        raise InvalidValue(f"admin permissions {data!r} are in no form idres understands")


P = AdminPermission

DEFAULT_HANDLE_ADMIN = P.from_bits("011111110011")


def _admin_bits(value: HandleValue) -> tuple[P, P, P]:
    """(add, modify, remove) permissions needed to change a value of this type."""
    if value.type_key == ADMIN_TYPE:
        return P.ADD_ADMIN, P.MODIFY_ADMIN, P.REMOVE_ADMIN
    return P.ADD_VALUE, P.MODIFY_VALUE, P.REMOVE_VALUE


def needed_for_change(old: Sequence[HandleValue], new: Sequence[HandleValue]) -> P:
    """Permissions a replace of ``old`` by ``new`` needs: add/modify/remove value or admin, per value.

    A value sent unchanged needs nothing, but only if it is public: rewriting a value nobody may read
    always needs the modify permission, so that the answer cannot tell whether a guess was right.
    """
    needed = P(0)
    old_by_index = {v.index: v for v in old}
    new_indexes = set()
    for value in new:
        new_indexes.add(value.index)
        before = old_by_index.get(value.index)
        if before is None:
            needed |= _admin_bits(value)[0]
        elif not (before.public_read and before.same_content(value)):
            needed |= _admin_bits(value)[1]
            if before.type_key != value.type_key:
                needed |= _admin_bits(before)[1]
    for value in old:
        if value.index not in new_indexes:
            needed |= _admin_bits(value)[2]
    return needed


def needed_for_removal(values: Iterable[HandleValue]) -> P:
    needed = P(0)
    for value in values:
        needed |= _admin_bits(value)[2]
    return needed


def grants(admin_entries: Iterable["AdminGrant"], needed: P) -> list[ValueRef]:
    """The admin references whose permissions include every bit of ``needed``."""
    return [g.ref for g in admin_entries if (g.permissions & needed) == needed]


def identity_matches(ref: ValueRef, identity: ValueRef) -> bool:
    """An HS_ADMIN reference names an identity; index 0 in the reference matches any index."""
    return fold(ref.handle) == fold(identity.handle) and (ref.index == 0 or ref.index == identity.index)


class AdminGrant:
    """One HS_ADMIN value: who (``ref``) may do what (``permissions``)."""

    __slots__ = ("ref", "permissions", "legacy")

    def __init__(self, ref: ValueRef, permissions: P, legacy: bool = False) -> None:
        self.ref = ref
        self.permissions = permissions
        self.legacy = legacy

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AdminGrant) and (self.ref, self.permissions, self.legacy) == (
            other.ref,
            other.permissions,
            other.legacy,
        )

    def __repr__(self) -> str:
        return f"AdminGrant({self.ref}, {self.permissions.to_bits()})"
