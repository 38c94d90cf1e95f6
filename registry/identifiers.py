"""The identifier policy: which new handles a node accepts, and the IDIS-strict profile. Pure.

The policy (on by default, ``IDRES_IDENTIFIER_POLICY``) refuses a handle that is being created when it
holds characters that make two different handles look alike or that change how text is shown, or a
suffix that URL-normalising clients would resolve as another handle:

- ``control``: C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F) controls;
- ``bidi``: bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
  U+202A–U+202E, U+2066–U+2069);
- ``zero-width``: U+200B–U+200D, U+2060, U+FEFF, U+180E;
- ``segments``: an empty, ``.`` or ``..`` segment between the slashes of the suffix (so no ``//``);
- ``nfc``: text not in Unicode normalisation form NFC.

Existing records are not judged: they stay resolvable, replaceable and deletable. Handles that values
name (HS_ADMIN, HS_VLIST, references) must pass the character rules.

The IDIS-strict profile (idis.md "Identifier grammar"), switched on per prefix
(``IDRES_IDIS_STRICT_PREFIXES``), adds for new handles under those prefixes and the prefixes derived
from them: at most 128 characters, exactly one ``/``, a suffix of ASCII letters, digits, ``.``,
``-`` and ``_`` that neither starts nor ends with ``.``, derived prefix fields of 1–128 digits; and
for every value written there, data of a non-``HS_`` type of at most 255 characters.

Refusals of a handle are InvalidHandle (responseCode 102), of a value InvalidValue (202); each message
names the rule and points to docs/identifiers.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from .errors import InvalidHandle, InvalidValue
from .model import Handle, HandleValue, fold
from .validation import BIDI, CONTROLS, ZERO_WIDTH, codepoint, nested_handles, shown

DOC = "docs/identifiers.md"
STRICT_DOC = "docs/identifiers.md#the-idis-strict-profile"
STRICT_MAX_HANDLE = 128
STRICT_MAX_STRING = 255
STRICT_MAX_PREFIX_FIELD = 128

_CHARACTER_RULES = (
    (CONTROLS, "a control character"),
    (BIDI, "a bidirectional control character"),
    (ZERO_WIDTH, "a zero-width character"),
)
_STRICT_SUFFIX = re.compile(r"[A-Za-z0-9._-]")
_DIGITS = re.compile(r"[0-9]{1,%d}" % STRICT_MAX_PREFIX_FIELD)


def character_problem(text: str) -> str | None:
    """What the character rules find in ``text``: ``contains … (U+…) at position N``, or None."""
    for pattern, name in _CHARACTER_RULES:
        found = pattern.search(text)
        if found:
            return f"contains {name} ({codepoint(found.group())}) at position {found.start() + 1}"
    return None


def _segment_problem(suffix: str) -> str | None:
    for number, segment in enumerate(suffix.split("/"), 1):
        if segment in ("", ".", ".."):
            kind = "an empty segment ('//' or a '/' at an end)" if not segment else f"a {segment!r} segment"
            return (f"has {kind} in its suffix (segment {number}), which clients that normalise URLs "
                    f"resolve as a different handle")
    return None


@dataclass(frozen=True)
class IdentifierPolicy:
    """The node's identifier policy: ``enabled`` for the general rules, and the IDIS-strict prefixes."""

    enabled: bool = True
    idis_strict_prefixes: tuple[str, ...] = ()

    def check_new(self, handle: Handle) -> None:
        """InvalidHandle unless a handle that does not exist yet may be created."""
        if self.enabled:
            problem = character_problem(handle.text) or nfc_problem(handle.text) or _segment_problem(handle.suffix)
            if problem:
                raise InvalidHandle(f"handle {shown(handle.text)} {problem}: refused by the identifier policy ({DOC})",
                                    handle=handle.text)
        strict = self.strict_prefix(handle)
        if strict is not None:
            problem = _strict_problem(handle, strict)
            if problem:
                raise InvalidHandle(f"handle {shown(handle.text)} {problem}: refused by the IDIS-strict profile of "
                                    f"prefix {strict} ({STRICT_DOC})", handle=handle.text)

    def check_values(self, handle: Handle, values: Iterable[HandleValue]) -> None:
        """InvalidValue for a value that names a handle the character rules refuse, or that the IDIS-strict
        profile refuses under ``handle``'s prefix. The values have passed ``validation.check_values``."""
        strict = self.strict_prefix(handle)
        for value in values:
            if self.enabled:
                for where, text in nested_handles(value):
                    problem = character_problem(text) or nfc_problem(text)
                    if problem:
                        raise InvalidValue(f"{where}: {shown(text)} {problem}: refused by the identifier policy ({DOC})",
                                           handle=handle.text)
            if strict is not None:
                _check_strict_value(value, handle, strict)

    def strict_prefix(self, handle: Handle) -> str | None:
        """The configured IDIS-strict prefix that ``handle``'s prefix is or is derived from, if any."""
        authority = fold(handle.authority)
        for prefix in self.idis_strict_prefixes:
            key = fold(prefix)
            if authority == key or authority.startswith(key + "."):
                return prefix
        return None


def _codepoints(text: str) -> str:
    return " ".join(codepoint(c) for c in text)


def nfc_problem(text: str) -> str | None:
    """Where ``text`` differs from its NFC form, or None when it is in NFC."""
    if unicodedata.is_normalized("NFC", text):
        return None
    nfc = unicodedata.normalize("NFC", text)
    start = next(i for i, (a, b) in enumerate(zip(text + "\0", nfc + "\1")) if a != b)
    end = 0
    while end < min(len(text), len(nfc)) - start and text[-1 - end] == nfc[-1 - end]:
        end += 1
    return (f"is not in Unicode normalisation form NFC: {_codepoints(text[start:len(text) - end])} at position "
            f"{start + 1} is {_codepoints(nfc[start:len(nfc) - end])} in NFC")


def _strict_problem(handle: Handle, strict: str) -> str | None:
    text = handle.text
    if len(text) > STRICT_MAX_HANDLE:
        return f"is {len(text)} characters long; the limit is {STRICT_MAX_HANDLE}"
    if text.count("/") != 1:
        return f"has {text.count('/')} '/' characters; exactly one separates prefix and suffix"
    derived = handle.authority[len(strict) + 1:].split(".") if len(handle.authority) > len(strict) else []
    if any(not _DIGITS.fullmatch(field) for field in derived):
        return f"names prefix {handle.authority}, whose fields after {strict} must be 1–{STRICT_MAX_PREFIX_FIELD} digits"
    for position, char in enumerate(handle.suffix, len(handle.prefix) + 2):
        if not _STRICT_SUFFIX.fullmatch(char):
            return (f"contains {shown(char)!r} ({codepoint(char)}) at position {position}; the suffix may hold only "
                    "ASCII letters, digits, '.', '-' and '_'")
    if handle.suffix.startswith(".") or handle.suffix.endswith("."):
        return "has a suffix that starts or ends with '.'"
    return None


def _check_strict_value(value: HandleValue, handle: Handle, strict: str) -> None:
    if value.type_key.startswith("HS_"):
        return
    try:
        length = len(value.data.decode("utf-8"))
    except UnicodeDecodeError:
        length = len(value.data)
    if length > STRICT_MAX_STRING:
        raise InvalidValue(f"value {value.index} ({value.type}) is {length} characters long; the limit is "
                           f"{STRICT_MAX_STRING}: refused by the IDIS-strict profile of prefix {strict} ({STRICT_DOC})",
                           handle=handle.text)
