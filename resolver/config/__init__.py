"""The one Settings object, and the only place that reads the environment.

Settings come in sections (``settings.listen.port``, ``settings.cache.max_ttl``, …). Every setting has
a flat name, which is its environment variable without ``IDRES_`` (``IDRES_PORT``,
``IDRES_CACHE_MAX_TTL``) and its command-line flag where it has one; flags win over the environment,
which wins over the defaults. Settings are read once and frozen: start-up derives new Settings
(``with_changes``) rather than changing them. docs/configuration.md lists them all.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry.errors import ConfigurationError

from .sections import (
    Listening, Storage, Requests, Identifiers, Auth, FrontDoor, Observability, Batch, Limits, Cache, Resolution, Signing, Replication, Operation, Client,
)

ENV_PREFIX = "IDRES_"
log = logging.getLogger(__name__)


def idres_version() -> str:
    """The installed idres version ("unknown" when run from a tree that was never installed)."""
    try:
        return _distribution_version("idres")
    except PackageNotFoundError:
        return "unknown"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    listen: Listening = Field(default_factory=Listening)
    storage: Storage = Field(default_factory=Storage)
    requests: Requests = Field(default_factory=Requests)
    front_door: FrontDoor = Field(default_factory=FrontDoor)
    observability: Observability = Field(default_factory=Observability)
    identifiers: Identifiers = Field(default_factory=Identifiers)
    auth: Auth = Field(default_factory=Auth)
    batch: Batch = Field(default_factory=Batch)
    limits: Limits = Field(default_factory=Limits)
    cache: Cache = Field(default_factory=Cache)
    resolution: Resolution = Field(default_factory=Resolution)
    signing: Signing = Field(default_factory=Signing)
    replication: Replication = Field(default_factory=Replication)
    operation: Operation = Field(default_factory=Operation)
    client: Client = Field(default_factory=Client)

    @classmethod
    def flat_names(cls) -> dict[str, tuple[str, str]]:
        """Flat name → (section, field), for every setting."""
        return {
            flat: (section, field)
            for section, info in cls.model_fields.items()
            for flat, field in info.annotation.flat_names().items()  # type: ignore[union-attr]
        }

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Settings from ``IDRES_*`` variables of ``env`` (default: the process environment), then
        ``overrides`` by flat name (command-line flags; None means not given)."""
        env = os.environ if env is None else env
        names = cls.flat_names()
        values = {name: env[ENV_PREFIX + name.upper()] for name in names if ENV_PREFIX + name.upper() in env}
        unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX):].lower() not in names)
        if unknown:
            log.warning("ignoring unknown settings %s (see docs/configuration.md)", ", ".join(unknown))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls._from_flat(values)

    @classmethod
    def _from_flat(cls, values: Mapping[str, Any]) -> "Settings":
        names = cls.flat_names()
        sections: dict[str, dict[str, Any]] = {}
        for flat, value in values.items():
            if flat not in names:
                raise ConfigurationError(f"invalid settings: there is no setting {flat!r}")
            section, field = names[flat]
            sections.setdefault(section, {})[field] = value
        try:
            return cls(**sections)
        except ValidationError as exc:
            raise ConfigurationError(_explain(exc)) from None

    def flat(self) -> dict[str, Any]:
        """Every setting by flat name."""
        dumped = self.model_dump()
        return {flat: dumped[section][field] for flat, (section, field) in self.flat_names().items()}

    def with_changes(self, **changes: Any) -> "Settings":
        """New Settings: these, with ``changes`` by flat name, validated again."""
        return self._from_flat({**self.flat(), **changes})

    @property
    def node_name(self) -> str:
        """This node's name in ``Via`` headers and errors: IDRES_NODE_NAME, else its advertised HTTP address."""
        return self.resolution.node_name or f"{self.listen.advertised_address}:{self.listen.port}"

    @property
    def metrics_path(self) -> Path:
        """Where the worker processes keep the metrics they share (IDRES_METRICS_DIR, default <data dir>/metrics)."""
        if self.observability.metrics_dir is not None:
            return self.observability.metrics_dir
        return self.storage.data_dir.expanduser().resolve() / "metrics"

    @property
    def keys_path(self) -> Path:
        if self.signing.keys_dir is not None:
            return self.signing.keys_dir
        return self.storage.data_dir.expanduser().resolve() / "keys"


def _explain(exc: ValidationError) -> str:
    problems = []
    by_field = {(section, field): flat for flat, (section, field) in Settings.flat_names().items()}
    for error in exc.errors():
        loc = tuple(str(p) for p in error["loc"])
        name = by_field.get(loc[:2]) if len(loc) >= 2 else None
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{name} (IDRES_{name.upper()}): {message}" if name else message)
    return "invalid settings: " + "; ".join(problems)


def share_metrics_directory(path: Path) -> None:
    """Tell prometheus-client, which reads it from the environment, where this process keeps its metrics
    (its multiprocess mode): called by each worker before any metric exists."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
