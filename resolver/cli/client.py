"""A small HTTP client of the Handle REST API, for ``idres get|put|delete`` against a running node."""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson

from registry.errors import ConfigurationError, ServerUnavailable

TIMEOUT = 30.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status in (200, 201) and isinstance(self.body, dict) and self.body.get("responseCode") == 1


class HandleClient:
    def __init__(self, url: str, *, user: str | None = None, password: str | None = None,
                 verify: bool = True, ca_file: Path | None = None) -> None:
        self.base = url.rstrip("/")
        self._auth = None
        self.sends_credentials = user is not None
        self.plain_http = self.base.startswith("http://")
        if user is not None and self.base.startswith("http://") and urlsplit(self.base).hostname not in LOOPBACK:
            raise ConfigurationError(f"credentials go over HTTPS only: use an https:// URL, not {self.base}")
        if user is not None:
            token = f"{quote(user, safe='/')}:{password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(token).decode()
        self._context = None
        if self.base.startswith("https"):
            self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            if not verify:
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE

    def request(self, method: str, path: str, query: list[tuple[str, str]] | None = None, body: Any = None) -> Reply:
        url = self.base + path + ("?" + urlencode(query) if query else "")
        data = orjson.dumps(body) if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT, context=self._context) as resp:
                return Reply(resp.status, _parse(resp.read()))
        except urllib.error.HTTPError as err:
            return Reply(err.code, _parse(err.read()))
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ServerUnavailable(f"cannot reach the node at {self.base}: {reason}") from None

    def handle_path(self, handle: str) -> str:
        return "/api/handles/" + quote(handle, safe="/:.-_~")


def _parse(data: bytes) -> Any:
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")
