"""Fitting every worker's database connections into the embedded PostgreSQL."""

from __future__ import annotations

import logging

from ..config import Settings

log = logging.getLogger(__name__)
EMBEDDED_CONNECTIONS = 90  # of the embedded PostgreSQL's max_connections (100), leaving room for operators
MIN_POOL = 2


def within_connection_budget(settings: Settings, embedded: bool) -> Settings:
    """Fit every worker's connections (its pool, which the renewal task shares, and its listener) into
    the embedded database: fewer workers if even the smallest pools would not fit, else smaller pools."""
    if not embedded:
        return settings
    most_workers = EMBEDDED_CONNECTIONS // (MIN_POOL + 1)
    if settings.listen.workers > most_workers:
        log.warning("%d workers would need more connections than the embedded PostgreSQL allows: running %d "
                    "(use an external PostgreSQL with --dsn for more)", settings.listen.workers, most_workers)
        settings = settings.with_changes(workers=most_workers)
    workers = settings.listen.workers
    per_worker = max(MIN_POOL, EMBEDDED_CONNECTIONS // workers - 1)
    if settings.storage.db_pool_size <= per_worker:
        return settings
    log.warning("%d workers: database pool of each worker lowered from %d to %d connections to fit the embedded PostgreSQL",
                workers, settings.storage.db_pool_size, per_worker)
    return settings.with_changes(db_pool_size=per_worker)
