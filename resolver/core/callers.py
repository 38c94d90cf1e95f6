"""Who is calling: the credentials a transport read, and the identity they proved."""

from __future__ import annotations

from dataclasses import dataclass

from registry.model import ValueRef


@dataclass(frozen=True)
class Credentials:
    """An identity (``index:handle`` of an HS_SECKEY value) and the secret that should prove it."""

    identity: ValueRef
    secret: bytes
    address: str | None = None  # the client's address, for the limits on failed logins


@dataclass(frozen=True)
class Caller:
    """An authenticated identity; ``server_admin`` when configuration names it."""

    identity: ValueRef
    server_admin: bool = False
