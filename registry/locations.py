"""Where a browser is sent for a handle: the record's ``10320/loc`` locations, else its ``URL`` value. Pure.

``10320/loc`` (Handle.Net's multiple-locations type) holds an XML list of locations::

    <locations chooseby="locatt,country,weighted">
      <location id="0" href="https://products.example.com/SN-1" weight="1" />
      <location id="1" href="https://mirror.example.org/SN-1" weight="0" />
    </locations>

The browser front takes the first usable ``href`` (an absolute ``http`` or ``https`` URL) of the
lowest-indexed ``10320/loc`` value, in document order, locations of weight 0 (kept for other clients'
choices) after the others. Without one, it takes the ``URL`` value with the lowest index that is a
usable URL. Anything else (``javascript:``, ``data:``, relative paths, text that is not a URL) is
never a redirect target.

The XML is parsed by Python's expat (2.4.1 or later refuses entity expansion bombs; external entities
are never fetched), and only values up to ``MAX_LOC_BYTES`` are parsed at all.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Iterable, Sequence
from urllib.parse import urlsplit

from .model import HandleValue

URL_TYPE = "URL"
LOC_TYPE = "10320/LOC"
MAX_LOC_BYTES = 64 * 1024
SCHEMES = ("http", "https")


def usable_url(text: str) -> str | None:
    """``text`` when it is an absolute http(s) URL with a host and nothing a Location header cannot carry."""
    text = text.strip()
    if not text or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme.lower() in SCHEMES and parts.netloc else None


def locations(data: bytes) -> list[str]:
    """The usable hrefs of a ``10320/loc`` value, in the order they are tried; [] when it is not the XML."""
    if len(data) > MAX_LOC_BYTES:
        return []
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, ValueError):
        return []
    preferred, weightless = [], []
    for element in root.iter("location"):
        href = usable_url(element.get("href", ""))
        if href is not None:
            (weightless if element.get("weight", "").strip() in ("0", "0.0") else preferred).append(href)
    return preferred + weightless


def _of_type(values: Iterable[HandleValue], type_key: str) -> list[HandleValue]:
    return sorted((v for v in values if v.type_key == type_key), key=lambda v: v.index)


def redirect_target(values: Sequence[HandleValue]) -> str | None:
    """The URL a browser asking for the record is redirected to; None when it has no usable location."""
    for value in _of_type(values, LOC_TYPE):
        found = locations(value.data)
        if found:
            return found[0]
    for value in _of_type(values, URL_TYPE):
        url = usable_url(value.data.decode("utf-8", "replace"))
        if url is not None:
            return url
    return None
