"""The objects one serving process is made of, wired once by app.py and reached by handlers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from registry.store import Store

from .auth import Authority
from .config import Settings
from .engine import Engine
from .invalidation import ChangeFollower
from .registrar import Registrar
from .site import SiteDescription


@dataclass
class Node:
    settings: Settings
    store: Store
    engine: Engine
    authority: Authority
    registrar: Registrar
    site: SiteDescription
    follower: ChangeFollower | None = None


NODE = web.AppKey("node", Node)
