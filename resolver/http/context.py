"""What the HTTP handlers reach of their serving process, and the application keys they reach it by.

The serving process (``resolver.serving.node.Node``) provides these parts; ``http`` names only what it
uses, so that it never imports the room that wires it.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from ..config import Settings
from ..core.limits import RateLimits
from ..core.rights import Rights
from ..core.sessions import Sessions
from ..keys.keyring import Keyring
from ..keys.site import SiteDescription
from ..resolution.engine import Engine
from ..writes.batch import BatchRunner
from ..writes.registrar import Registrar
from .signatures import ResponseSigner


class NodeParts(Protocol):
    settings: Settings
    engine: Engine
    rights: Rights
    registrar: Registrar
    keyring: Keyring
    batches: BatchRunner
    sessions: Sessions
    limits: RateLimits

    def current_site(self) -> SiteDescription: ...

    async def readiness(self) -> dict[str, Any]: ...


NODE = web.AppKey("node", NodeParts)
SIGNER = web.AppKey("response_signer", ResponseSigner)
