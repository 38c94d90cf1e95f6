"""The one Settings object, and the only place that reads the environment.

Every setting has an environment variable ``IDRES_<NAME>`` and most have a command-line flag; flags
win over the environment, which wins over the defaults. docs/configuration.md lists them all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from registry.errors import ConfigurationError
from registry.model import ValueRef

ENV_PREFIX = "IDRES_"
log = logging.getLogger(__name__)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # listening
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    tls_port: int | None = Field(8443, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    public_address: str | None = None
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    shutdown_timeout: float = Field(30.0, gt=0)

    # storage
    data_dir: Path = Path("idres-data")
    dsn: str | None = None
    db_pool_size: int = Field(8, ge=2, le=500)
    db_timeout: float = Field(10.0, gt=0)

    # requests and authorisation
    max_handle_length: int = Field(255, ge=16, le=4096)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    allow_http_auth: bool = False
    server_admins: tuple[str, ...] = ()
    prefix_admins_manage_handles: bool = True
    allow_list_handles: bool = True
    gzip_min_bytes: int = Field(512, ge=0)

    # cache
    cache_enabled: bool = True
    cache_max_entries: int = Field(200_000, ge=0)
    cache_max_bytes: int = Field(1024 * 1024 * 1024, ge=0)
    cache_min_ttl: int = Field(0, ge=0)
    cache_max_ttl: int = Field(3600, ge=0)
    cache_negative_ttl: int = Field(60, ge=0)
    cache_negative_max_entries: int = Field(100_000, ge=0)
    cache_poll_interval: float = Field(1.0, gt=0, le=60)

    # signing
    signing: bool = True
    keys_dir: Path | None = None
    key_algorithm: str = "ed25519"
    signature_lifetime: int = Field(30 * 86400, ge=3600)
    signature_renew_before: int = Field(7 * 86400, ge=60)
    renew_interval: float = Field(60.0, gt=0)
    renew_batch: int = Field(500, ge=1)
    http_signature_lifetime: int = Field(300, ge=10)
    trust_root_handle: str = "0.0/0.0"
    root_key: Path | None = None

    # operation
    demo: bool = False
    log_level: str = "info"
    access_log: bool = False

    # client commands (idres get/put/delete)
    url: str = "http://127.0.0.1:8000"
    user: str | None = None
    password: str | None = None
    tls_verify: bool = True
    ca_file: Path | None = None

    @field_validator("tls_port", mode="before")
    @classmethod
    def _tls_off(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "off", "none", "no"):
            return None
        return value

    @field_validator("server_admins", mode="before")
    @classmethod
    def _split_admins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        for identity in value:
            try:
                ValueRef.parse(identity)
            except Exception:
                raise ValueError(f"server admin {identity!r} is not of the form index:prefix/suffix") from None
        return tuple(value)

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.signature_renew_before >= self.signature_lifetime:
            raise ValueError("IDRES_SIGNATURE_RENEW_BEFORE must be shorter than IDRES_SIGNATURE_LIFETIME")
        if self.cache_min_ttl > self.cache_max_ttl:
            raise ValueError("IDRES_CACHE_MIN_TTL must not be larger than IDRES_CACHE_MAX_TTL")
        return self

    @field_validator("key_algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        if value.lower() not in ("ed25519", "rsa"):
            raise ValueError("key_algorithm must be ed25519 or rsa")
        return value.lower()

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level must be debug, info, warning or error")
        return value.lower()

    @field_validator("dsn", mode="before")
    @classmethod
    def _empty_dsn(cls, value: Any) -> Any:
        return value or None

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Settings from ``IDRES_*`` variables of ``env`` (default: the process environment), then overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = ENV_PREFIX + name.upper()
            if key in env:
                values[name] = env[key]
        unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX):].lower() not in cls.model_fields)
        if unknown:
            log.warning("ignoring unknown settings %s (see docs/configuration.md)", ", ".join(unknown))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigurationError(_explain(exc)) from None

    def with_changes(self, **changes: Any) -> "Settings":
        try:
            return type(self)(**{**self.model_dump(), **changes})
        except ValidationError as exc:
            raise ConfigurationError(_explain(exc)) from None

    @property
    def server_admin_refs(self) -> tuple[ValueRef, ...]:
        return tuple(ValueRef.parse(a) for a in self.server_admins)

    @property
    def keys_path(self) -> Path:
        return self.keys_dir if self.keys_dir is not None else self.data_dir.expanduser().resolve() / "keys"

    @property
    def advertised_address(self) -> str:
        if self.public_address:
            return self.public_address
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{name} (IDRES_{name.upper()}): {message}" if name else message)
    return "invalid settings: " + "; ".join(problems)
