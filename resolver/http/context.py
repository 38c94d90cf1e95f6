"""What the HTTP handlers reach of their serving process, and the application keys they reach it by.

The serving process (``resolver.serving.node.Node``) provides these parts; ``http`` names only what it
uses, so that it never imports the room that wires it.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from ..config import Settings
from ..core.health import DatabaseHealth
from ..core.rights import Rights
from ..keys.keyring import Keyring
from ..keys.site import SiteDescription
from ..replication.service import Replication
from ..resolution.engine import Engine
from ..writes.registrar import Registrar
from .signatures import ResponseSigner


class NodeParts(Protocol):
    settings: Settings
    health: DatabaseHealth
    engine: Engine
    rights: Rights
    registrar: Registrar
    keyring: Keyring
    replication: Replication | None

    def current_site(self) -> SiteDescription: ...

    async def readiness(self) -> dict[str, Any]: ...


NODE = web.AppKey("node", NodeParts)
SIGNER = web.AppKey("response_signer", ResponseSigner)
