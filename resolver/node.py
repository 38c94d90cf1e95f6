"""The objects one serving process is made of, wired once by app.py and reached by handlers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from registry.store import Store

from .auth import Authority
from .config import Settings
from .engine import Engine
from .http_signatures import ResponseSigner
from .invalidation import ChangeFollower
from .keyring import Keyring
from .registrar import Registrar
from .renewal import SignatureRenewer
from .site import SiteDescription, site_of


@dataclass
class Node:
    settings: Settings
    store: Store
    engine: Engine
    authority: Authority
    registrar: Registrar
    site: SiteDescription
    keyring: Keyring
    follower: ChangeFollower | None = None
    response_signer: ResponseSigner | None = None
    renewer: SignatureRenewer | None = None
    _site_generation: int = -1

    def current_site(self) -> SiteDescription:
        """The HS_SITE of /api/site, following key rotations made while the node runs."""
        self.keyring.reload_if_changed()
        if self._site_generation != self.keyring.generation:
            self.site = site_of(self.settings, self.keyring)
            self._site_generation = self.keyring.generation
        return self.site


NODE = web.AppKey("node", Node)
