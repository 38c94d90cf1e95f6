"""This node's HS_SITE: where it listens and with which interfaces; the record a homed prefix starts with."""

from __future__ import annotations

from registry.jws import public_jwk
from registry.model import HandleValue, Record, prefix_record_handle
from registry.values import TRANSPORTS, Interface, Server, SiteInfo, jwk_to_pubkey

from ..config import Settings
from .keyring import Keyring

SITE_INDEX = 1


def key_bytes(keyring: Keyring, kid: str) -> bytes:
    """A signing key's public part in the Handle key encoding (HS_PUBKEY data)."""
    return jwk_to_pubkey(public_jwk(keyring.public_key(kid)))


def active_key_bytes(keyring: Keyring | None) -> bytes:
    """The active signing key in the Handle key encoding (empty without one)."""
    active = keyring.active if keyring is not None else None
    return key_bytes(keyring, active.kid) if active is not None else b""


def site_of(settings: Settings, keyring: Keyring | None) -> "SiteDescription":
    """This node's HS_SITE, with the active signing key as the server's public key."""
    return SiteDescription(settings, active_key_bytes(keyring))


class SiteDescription:
    def __init__(self, settings: Settings, public_key: bytes = b"") -> None:
        listen = settings.listen
        interfaces = [Interface(TRANSPORTS["HTTP"], listen.port, query=True, admin=settings.auth.allow_http_auth)]
        if listen.tls_port is not None:
            interfaces.append(Interface(TRANSPORTS["HTTPS"], listen.tls_port, query=True, admin=True))
        self.info = SiteInfo(
            servers=(Server(1, listen.advertised_address, public_key, tuple(interfaces)),),
            attributes=(("desc", "idres node"),),
        )

    def to_json(self) -> dict:
        return self.info.to_json()

    def prefix_record(self, prefix: str, now: int) -> Record:
        """The record ``0.NA/<prefix>`` gets when the prefix is homed here: this node's HS_SITE."""
        site = HandleValue(SITE_INDEX, "HS_SITE", self.info.to_bytes(), timestamp=now)
        return Record(prefix_record_handle(prefix), (site,))
