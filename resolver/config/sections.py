"""The sections of the Settings object: each a frozen group of settings with their defaults and checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from registry.errors import IdresError
from registry.identifiers import IdentifierPolicy
from registry.model import ValueRef, parse_prefix


class Section(BaseModel):
    """A frozen group of settings; a field's flat name is ``env_prefix`` + its name unless ``env_names`` says otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    env_prefix: ClassVar[str] = ""
    env_names: ClassVar[dict[str, str]] = {}

    @classmethod
    def flat_names(cls) -> dict[str, str]:
        """Flat name → field name."""
        return {cls.env_names.get(name, cls.env_prefix + name): name for name in cls.model_fields}


class Listening(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    tls_port: int | None = Field(8443, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    public_address: str | None = None
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    shutdown_timeout: float = Field(30.0, gt=0)

    @field_validator("tls_port", mode="before")
    @classmethod
    def _tls_off(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "off", "none", "no"):
            return None
        return value

    @property
    def advertised_address(self) -> str:
        if self.public_address:
            return self.public_address
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host


class Storage(Section):
    data_dir: Path = Path("idres-data")
    dsn: str | None = None
    db_pool_size: int = Field(8, ge=2, le=500)
    db_timeout: float = Field(10.0, gt=0)

    @field_validator("dsn", mode="before")
    @classmethod
    def _empty_dsn(cls, value: Any) -> Any:
        return value or None


class Requests(Section):
    max_handle_length: int = Field(255, ge=16, le=4096)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    gzip_min_bytes: int = Field(512, ge=0)


class Identifiers(Section):
    """Which new handles the node accepts (docs/identifiers.md)."""

    identifier_policy: bool = True
    idis_strict_prefixes: tuple[str, ...] = ()

    @field_validator("idis_strict_prefixes", mode="before")
    @classmethod
    def _split_prefixes(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        try:
            return tuple(parse_prefix(p) for p in value)
        except IdresError as exc:
            raise ValueError(exc.message) from None

    def policy(self) -> IdentifierPolicy:
        return IdentifierPolicy(self.identifier_policy, self.idis_strict_prefixes)


def _identities(value: Any, what: str) -> tuple[str, ...]:
    """A list of ``index:prefix/suffix`` identities, from a comma-separated string or a sequence."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    for identity in value:
        try:
            ValueRef.parse(identity)
        except Exception:
            raise ValueError(f"{what} {identity!r} is not of the form index:prefix/suffix") from None
    return tuple(value)


class Auth(Section):
    allow_http_auth: bool = False
    server_admins: tuple[str, ...] = ()
    prefix_admins_manage_handles: bool = True
    allow_list_handles: bool = True
    seckey_iterations: int = Field(100_000, ge=1000, le=10_000_000)
    session_timeout: int = Field(1800, ge=10)

    @field_validator("server_admins", mode="before")
    @classmethod
    def _split_admins(cls, value: Any) -> Any:
        return _identities(value, "server admin")

    @property
    def server_admin_refs(self) -> tuple[ValueRef, ...]:
        return tuple(ValueRef.parse(a) for a in self.server_admins)


class FrontDoor(Section):
    """What a node accepts from the network before a request reaches a handler."""

    max_connections: int = Field(10_000, ge=16)
    max_connections_per_address: int = Field(1_000, ge=1)
    header_timeout: float = Field(30.0, gt=0, le=3600)
    body_timeout: float = Field(30.0, gt=0, le=3600)
    max_header_bytes: int = Field(8190, ge=1024, le=1_048_576)
    max_url_bytes: int = Field(8190, ge=256, le=1_048_576)


class Observability(Section):
    """Metrics, per-prefix statistics and access logs."""

    metrics: bool = True
    metrics_dir: Path | None = None
    statistics: bool = True
    statistics_flush_interval: float = Field(10.0, gt=0, le=3600)
    access_log_format: str = "text"
    access_log_sample: float = Field(1.0, ge=0, le=1)

    @field_validator("access_log_format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value.lower() not in ("text", "json"):
            raise ValueError("access_log_format must be text or json")
        return value.lower()


class Batch(Section):
    """``POST /api/batch``."""

    env_prefix: ClassVar[str] = "batch_"
    max_items: int = Field(10_000, ge=1)
    max_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_line_bytes: int = Field(64 * 1024, ge=256)
    chunk_size: int = Field(500, ge=1, le=10_000)
    idempotency_ttl: int = Field(86400, ge=60)
    concurrency: int = Field(2, ge=1, le=64)


class Limits(Section):
    """Rate limits, per window of ``rate_window`` seconds; 0 switches a limit off."""

    env_prefix: ClassVar[str] = "rate_"
    window: int = Field(60, ge=1, le=86400)
    writes_per_identity: int = Field(3_000_000, ge=0)
    writes_per_address: int = Field(3_000_000, ge=0)
    failed_logins_per_identity: int = Field(10, ge=0)
    failed_logins_per_address: int = Field(30, ge=0)
    sync_interval: float = Field(0.2, gt=0, le=10)


class Cache(Section):
    env_prefix: ClassVar[str] = "cache_"
    enabled: bool = True
    max_entries: int = Field(200_000, ge=0)
    max_bytes: int = Field(1024 * 1024 * 1024, ge=0)
    min_ttl: int = Field(0, ge=0)
    max_ttl: int = Field(3600, ge=0)
    negative_ttl: int = Field(60, ge=0)
    negative_max_entries: int = Field(100_000, ge=0)
    poll_interval: float = Field(1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _consistent(self) -> "Cache":
        if self.min_ttl > self.max_ttl:
            raise ValueError("IDRES_CACHE_MIN_TTL must not be larger than IDRES_CACHE_MAX_TTL")
        return self


class Resolution(Section):
    """How a node resolves what other nodes serve: delegation, the root, verification, serving stale."""

    node_name: str | None = None
    root_node: tuple[str, ...] = ()
    trust_root: Path | None = None
    refer: bool = False
    upstream_timeout: float = Field(2.0, gt=0, le=300)
    upstream_deadline: float = Field(5.0, gt=0, le=600)
    upstream_connections: int = Field(100, ge=1, le=10_000)
    max_hops: int = Field(8, ge=1, le=64)
    stale_window: int = Field(86400, ge=0)
    stale_refresh_interval: float = Field(30.0, gt=0)

    @field_validator("root_node", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        for url in value:
            if not str(url).startswith(("http://", "https://")):
                raise ValueError(f"root node {url!r} is not an http:// or https:// URL")
        return tuple(str(url).rstrip("/") for url in value)

    @model_validator(mode="after")
    def _consistent(self) -> "Resolution":
        if self.upstream_timeout > self.upstream_deadline:
            raise ValueError("IDRES_UPSTREAM_TIMEOUT must not be longer than IDRES_UPSTREAM_DEADLINE")
        return self


class Signing(Section):
    env_names: ClassVar[dict[str, str]] = {"enabled": "signing"}
    enabled: bool = True
    keys_dir: Path | None = None
    key_algorithm: str = "ed25519"
    signature_lifetime: int = Field(30 * 86400, ge=3600)
    signature_renew_before: int = Field(7 * 86400, ge=60)
    renew_interval: float = Field(60.0, gt=0)
    renew_batch: int = Field(500, ge=1)
    http_signature_lifetime: int = Field(300, ge=10)
    trust_root_handle: str = "0.0/0.0"
    root_key: Path | None = None

    @field_validator("key_algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        if value.lower() not in ("ed25519", "rsa"):
            raise ValueError("key_algorithm must be ed25519 or rsa")
        return value.lower()

    @model_validator(mode="after")
    def _consistent(self) -> "Signing":
        if self.signature_renew_before >= self.signature_lifetime:
            raise ValueError("IDRES_SIGNATURE_RENEW_BEFORE must be shorter than IDRES_SIGNATURE_LIFETIME")
        return self


class Replication(Section):
    """The change feed and snapshots this node serves, and the mirrors it keeps (docs/replication.md)."""

    sync_retention: int = Field(7 * 86400, ge=60)
    sync_prune_interval: float = Field(60.0, gt=0)
    sync_prune_batch: int = Field(10_000, ge=1, le=1_000_000)
    sync_identities: tuple[str, ...] = ()
    sync_max_limit: int = Field(10_000, ge=1, le=100_000)
    sync_max_wait: float = Field(60.0, ge=0, le=600)
    sync_seal: bool = True
    mirror_batch: int = Field(1000, ge=1, le=100_000)
    mirror_wait: float = Field(25.0, ge=0, le=600)
    mirror_timeout: float = Field(30.0, gt=0, le=3600)
    mirror_verify: str = "sealed"
    mirror_gzip: bool = True
    mirror_poll_interval: float = Field(2.0, gt=0, le=300)
    mirror_backoff_max: float = Field(60.0, gt=0, le=3600)

    @field_validator("sync_identities", mode="before")
    @classmethod
    def _split_identities(cls, value: Any) -> Any:
        return _identities(value, "replication identity")

    @field_validator("mirror_verify")
    @classmethod
    def _verify(cls, value: str) -> str:
        if value.lower() not in ("sealed", "records"):
            raise ValueError("mirror_verify must be sealed or records")
        return value.lower()

    @model_validator(mode="after")
    def _consistent(self) -> "Replication":
        if self.mirror_wait > self.sync_max_wait:
            raise ValueError("IDRES_MIRROR_WAIT must not be longer than IDRES_SYNC_MAX_WAIT")
        return self

    @property
    def sync_identity_refs(self) -> tuple[ValueRef, ...]:
        return tuple(ValueRef.parse(a) for a in self.sync_identities)


class Operation(Section):
    demo: bool = False
    log_level: str = "info"
    access_log: bool = False

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level must be debug, info, warning or error")
        return value.lower()


class Client(Section):
    """For the client commands (``idres get|put|delete``)."""

    url: str = "http://127.0.0.1:8000"
    user: str | None = None
    password: str | None = None
    tls_verify: bool = True
    ca_file: Path | None = None
