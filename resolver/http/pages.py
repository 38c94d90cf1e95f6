"""The browser front's HTML: the home page with its lookup form, a record's public values, and errors.

Pages are filled from the small templates in ``templates/`` with ``string.Template``. Every field is
HTML-escaped when it is filled in, unless it is ``Safe`` — markup this module made itself from escaped
parts. Nothing a record holds reaches a page unescaped, and no page carries a script.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Sequence
from urllib.parse import quote

import orjson

from registry.locations import usable_url
from registry.model import TTL_ABSOLUTE, HandleValue
from registry.value_json import data_to_json, iso_time

HTML_TYPE = "text/html; charset=utf-8"
# the path characters a handle keeps in a link to this node (path_text decodes the rest)
HANDLE_SAFE = "/:.-_~!$&'()*+,;=@"
# no form-action: the lookup form's answer redirects on to the record's site, which it would forbid
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Safe(str):
    """Markup that is already escaped."""


def escaped(value: object) -> Safe:
    return value if isinstance(value, Safe) else Safe(html.escape(str(value), quote=True))


def fill(template: Template, **fields: object) -> Safe:
    return Safe(template.substitute({name: escaped(value) for name, value in fields.items()}))


def handle_path(handle: str) -> str:
    """The path of a handle on the browser front: ``/88.101.5/SN-000123``."""
    return "/" + quote(handle, safe=HANDLE_SAFE)


@dataclass(frozen=True)
class SignatureStatus:
    """What the page says of a record's signatures: ``kind`` (verified, failed, unchecked, unsigned) and a sentence."""

    kind: str
    sentence: str


@dataclass(frozen=True)
class Pages:
    layout: Template
    home: Template
    record: Template
    value_row: Template
    error: Template
    site: str
    node: str

    @classmethod
    def load(cls, site: str, node: str) -> "Pages":
        folder = resources.files(__package__).joinpath("templates")
        read = {name: Template(folder.joinpath(f"{name}.html").read_text("utf-8").rstrip("\n"))
                for name in ("layout", "home", "record", "value_row", "error")}
        return cls(site=site, node=node, **read)

    def _page(self, title: str, content: Safe) -> bytes:
        return fill(self.layout, title=title, site=self.site, node=self.node, content=content).encode("utf-8")

    def home_page(self, example: str) -> bytes:
        return self._page(self.site, fill(self.home, example=example))

    def record_page(self, handle: str, values: Sequence[HandleValue], status: SignatureStatus, target: str | None) -> bytes:
        rows = Safe("\n".join(self._row(v) for v in sorted(values, key=lambda v: v.index)))
        go = fill(Template('<p><a href="$href" id="target">Go to $url</a></p>'), href=handle_path(handle), url=target) if target else ""
        content = fill(self.record, handle=handle, signature_kind=status.kind, signature=status.sentence, target=go, rows=rows,
                       json_link="/api/handles/" + quote(handle, safe=HANDLE_SAFE))
        return self._page(handle, content)

    def error_page(self, status: int, code: int, title: str, message: str, handle: str) -> bytes:
        return self._page(title, fill(self.error, title=title, message=message, status=status, code=code, handle=handle))

    def _row(self, value: HandleValue) -> str:
        ttl = iso_time(value.ttl) if value.ttl_type == TTL_ABSOLUTE else f"{value.ttl} s"
        timestamp = iso_time(value.timestamp) if value.timestamp else ""
        return fill(self.value_row, index=value.index, type=value.type, data=data_cell(value), ttl=ttl, timestamp=timestamp)


def data_cell(value: HandleValue) -> Safe:
    """A value's data as the page shows it: text (a link when it is a web URL), or its JSON form."""
    data = data_to_json(value)
    shown = data["value"]
    if data["format"] == "string":
        url = usable_url(shown)
        if url is not None:
            return fill(Template('<a href="$href" rel="nofollow noopener">$text</a>'), href=url, text=shown)
        return escaped(shown)
    if data["format"] == "base64":
        return escaped(f"(base64) {shown}")
    return fill(Template("<pre>$json</pre>"), json=orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
