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
from .site import SiteDescription


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


NODE = web.AppKey("node", Node)
