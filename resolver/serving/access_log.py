"""Access logs: one line per request on the logger ``idres.access``, as text or as JSON lines, sampled.

A JSON line carries the time, the client address, method, path, status, the bytes sent, the duration
in milliseconds and the request id: the ``X-Request-Id`` the client sent, or one made here.
``IDRES_ACCESS_LOG_SAMPLE`` keeps that share of the lines (1: every request).
"""

from __future__ import annotations

import logging
import random
import secrets
import time

import orjson
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_log import AccessLogger

REQUEST_ID = "X-Request-Id"


class JsonAccessLogger(AbstractAccessLogger):
    sample = 1.0

    def log(self, request, response, time_taken: float) -> None:
        if self.sample < 1.0 and random.random() >= self.sample:
            return
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "requestId": request.headers.get(REQUEST_ID) or secrets.token_hex(8),
            "remote": request.remote,
            "method": request.method,
            "path": request.raw_path,
            "status": response.status,
            "bytes": response.body_length,
            "ms": round(time_taken * 1000, 3),
        }
        self.logger.info(orjson.dumps(line).decode())


class SampledTextAccessLogger(AccessLogger):
    sample = 1.0

    def log(self, request, response, time_taken: float) -> None:
        if self.sample >= 1.0 or random.random() < self.sample:
            super().log(request, response, time_taken)


def access_log_options(enabled: bool, fmt: str, sample: float) -> dict:
    """The AppRunner arguments of the access log: none when off."""
    if not enabled:
        return {"access_log": None}
    cls = type("AccessLog", (JsonAccessLogger if fmt == "json" else SampledTextAccessLogger,), {"sample": sample})
    return {"access_log": logging.getLogger("idres.access"), "access_log_class": cls}
