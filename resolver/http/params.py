"""Reading requests: the handle in the path, query flags as Handle.Net reads them, JSON bodies."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote_to_bytes

import orjson
from aiohttp import hdrs, web
from multidict import MultiMapping

from registry.errors import BodyTimeout, BodyTooLarge, InvalidHandle, ProtocolError, UnsupportedMediaType


MAX_JSON_DEPTH = 32
BODY_TIMEOUT = web.AppKey("body_timeout", float)  # IDRES_BODY_TIMEOUT, set by the app
DEFAULT_BODY_TIMEOUT = 30.0
MAX_PAGE = 2**31 - 1


def path_text(request: web.Request, route_prefix: str) -> str:
    """The percent-decoded UTF-8 text after ``route_prefix`` in the raw path; ``+`` stays ``+``."""
    raw = request.raw_path.split("?", 1)[0]
    text = raw[len(route_prefix):] if raw.startswith(route_prefix) else ""
    if "%" not in text and text.isascii():
        return text
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise InvalidHandle("the handle in the path is not valid UTF-8") from None


def flag(query: MultiMapping[str], name: str, default: bool) -> bool:
    """Handle.Net's getBooleanParameter: present and empty, ``true`` or ``yes`` mean true."""
    if name not in query:
        return default
    value = query[name]
    return value == "" or value.lower() in ("true", "yes")


def java_flag(query: MultiMapping[str], name: str, default: bool) -> bool:
    """Java's Boolean.parseBoolean, used by Handle.Net for ``overwrite`` and ``mintNewSuffix``."""
    if name not in query:
        return default
    return query[name].lower() == "true"


def integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ProtocolError(f'java.lang.NumberFormatException: For input string: "{text}"') from None


def indexes(query: MultiMapping[str]) -> list[int]:
    return [integer(i) for i in query.getall("index", [])]


def page_params(query: MultiMapping[str]) -> tuple[int | None, int | None]:
    page = integer(query["page"]) if "page" in query else None
    size = integer(query["pageSize"]) if "pageSize" in query else None
    for name, value in (("page", page), ("pageSize", size)):
        if value is not None and value > MAX_PAGE:
            raise ProtocolError(f"{name} {value} is larger than {MAX_PAGE}")
    return page, size


async def json_body(request: web.Request, limit: int) -> object:
    """The parsed JSON body; 415 for another media type, 413 past ``limit`` bytes, 400 for bad JSON."""
    mime = request.headers.get(hdrs.CONTENT_TYPE, "").split(";", 1)[0].strip().lower()
    if mime != "application/json":
        raise UnsupportedMediaType(f"Unsupported media type {mime or '(none)'}: send Content-Type: application/json")
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the request body of {request.content_length} bytes is over the limit of {limit} bytes")
    data = await read_body(request, limit)
    if len(data) > limit:
        raise BodyTooLarge(f"the request body is over the limit of {limit} bytes")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"the request body is not valid JSON: {exc}") from None
    if _depth(body) > MAX_JSON_DEPTH:
        raise ProtocolError(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    return body


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, within the body deadline (IDRES_BODY_TIMEOUT): a body that stalls is refused."""
    deadline = request.app.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)
    try:
        async with asyncio.timeout(deadline):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(f"the request body is over the limit of {limit} bytes") from None
    except TimeoutError:
        raise BodyTimeout(f"the request body did not arrive within {deadline:g} s") from None


async def next_chunk(request: web.Request, size: int = 1 << 16) -> bytes:
    """The next part of a long body (b"" at its end): each part must arrive within the body deadline, so a
    body may take as long as it needs while it keeps coming, and a stalled one is refused."""
    deadline = request.app.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)
    try:
        async with asyncio.timeout(deadline):
            return await request.content.read(size)
    except TimeoutError:
        raise BodyTimeout(f"the request body stalled: nothing arrived for {deadline:g} s") from None


def _depth(value: object) -> int:
    """How deeply arrays and objects nest, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in item)
    return deepest
