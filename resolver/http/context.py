"""What the HTTP handlers reach of their serving process, and the application keys they reach it by.

The serving process (``resolver.serving.node.Node``) provides these parts; ``http`` names only what it
uses, so that it never imports the room that wires it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from registry.pg.statistics import HourCounts

from ..config import Settings
from ..core.health import DatabaseHealth
from ..core.limits import RateLimits
from ..core.rights import Rights
from ..core.sessions import Sessions
from ..keys.keyring import Keyring
from ..keys.site import SiteDescription
from ..replication.service import Replication
from ..resolution.engine import Engine
from ..resolution.forwarding import Forwarder
from ..writes.batch import BatchRunner
from ..writes.registrar import Registrar
from .signatures import ResponseSigner


class RequestMetrics(Protocol):
    def observe(self, route: str, method: str, status: int, seconds: float) -> None: ...

    def exposition(self) -> bytes: ...


class NodeParts(Protocol):
    settings: Settings
    health: DatabaseHealth
    metrics: RequestMetrics | None
    engine: Engine
    rights: Rights
    registrar: Registrar
    keyring: Keyring
    batches: BatchRunner
    sessions: Sessions
    limits: RateLimits
    forwarder: Forwarder | None
    replication: Replication | None

    def current_site(self) -> SiteDescription: ...

    async def readiness(self) -> dict[str, Any]: ...

    async def read_statistics(self, prefixes: list[str], start: datetime, end: datetime) -> list[HourCounts]: ...


NODE = web.AppKey("node", NodeParts)
SIGNER = web.AppKey("response_signer", ResponseSigner)
