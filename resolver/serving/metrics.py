"""The metrics of a serving process, in Prometheus's model, shared by all workers of a node.

prometheus-client's multiprocess mode keeps every worker's values in files of one directory
(``IDRES_METRICS_DIR``), which ``GET /metrics`` reads whichever worker answers, so the counters add up
across workers. The hit path pays for no metric at all: it counts in plain integers (the cache's, and
the per-prefix tallies), and ``NodeMetrics.flush`` — once a second — turns what grew into
increments. Requests off the hit path are counted, with their latency, as they finish.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from ..resolution.statistics import StatisticsReader

HIT_ROUTE = "/api/handles/{handle} (cache hit)"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def clear_directory(path: Path) -> None:
    """A node starts its metrics afresh: the files of a previous run go."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def forget_process(path: Path, pid: int) -> None:
    """A worker died: its live gauges no longer count (its counters do)."""
    mark_process_dead(pid, str(path))


class NodeMetrics:
    def __init__(self, shared_directory: Path | None) -> None:
        self._node: Any = None
        self._directory = shared_directory
        self.registry = CollectorRegistry()  # this process's metrics; /metrics reads the shared files when shared
        self._make(self.registry)
        self._statistics: StatisticsReader | None = None
        self._seen: dict[str, float] = {}
        self._mirrors: set[str] = set()  # the prefixes whose lag this process reports

    def attach(self, node: Any) -> None:
        """The node whose plain counters ``flush`` turns into metrics."""
        self._node = node
        self._statistics = node.engine.statistics.reader()

    def _make(self, registry: CollectorRegistry) -> None:
        r = {"registry": registry}
        self.requests = Counter("idres_http_requests", "HTTP requests answered", ["route", "method", "status"], **r)
        self.latency = Histogram("idres_http_request_duration_seconds", "Time to answer a request, off the hit path",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, **r)
        self.cache_events = Counter("idres_cache", "Cache lookups and evictions", ["event"], **r)
        self.cache_size = Gauge("idres_cache_entries", "Entries in the caches", ["kind"], multiprocess_mode="livesum", **r)
        self.cache_bytes = Gauge("idres_cache_bytes", "Bytes of positive entries", multiprocess_mode="livesum", **r)
        self.pool = Gauge("idres_db_pool_connections", "Pooled database connections", ["state"], multiprocess_mode="livesum", **r)
        self.queries = Histogram("idres_db_query_duration_seconds", "Time of a database query", ["operation"],
                                 buckets=LATENCY_BUCKETS, **r)
        self.signatures = Counter("idres_signatures", "Signatures made and verified", ["kind"], **r)
        self.upstream = Counter("idres_upstream_requests", "Requests to other nodes", **r)
        self.stale = Counter("idres_stale_answers", "Answers served stale", **r)
        self.database = Gauge("idres_database_available", "1 while the database answers", multiprocess_mode="livemin", **r)
        self.refused = Counter("idres_database_refused", "Requests refused while the database was away", ["kind"], **r)
        self.follower = Counter("idres_change_follower_applied", "Changes of the log applied to the cache", **r)
        self.follower_lag = Gauge("idres_change_follower_lag_seconds",
                                  "Seconds since a worker's change follower last had every change", multiprocess_mode="livemax", **r)
        self.mirror_lag = Gauge("idres_mirror_lag_changes", "Changes the origin has that the mirror has not applied yet",
                                ["prefix"], multiprocess_mode="livesum", **r)
        self.mirror_rejected = Counter("idres_mirror_rejected_records", "Records a mirror refused because they did not verify",
                                       ["prefix"], **r)
        self.connections = Gauge("idres_connections_open", "Open client connections", multiprocess_mode="livesum", **r)
        self.closed = Counter("idres_connections_closed_for_room", "Connections closed at a cap to let others in", **r)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """A request off the hit path finished."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_query(self, operation: str, seconds: float) -> None:
        self.queries.labels(operation).observe(seconds)

    def _grown(self, name: str, value: float) -> float:
        before = self._seen.get(name, 0)
        self._seen[name] = value
        return max(0, value - before)

    def flush(self) -> None:
        """Turn what the process counted in plain integers since the last flush into metric increments."""
        node = self._node
        if node is None or self._statistics is None:
            return
        for counts in self._statistics.take():
            if counts.hits:
                self.requests.labels(HIT_ROUTE, "GET", "200").inc(counts.hits)
            if counts.not_found_hits:
                self.requests.labels(HIT_ROUTE, "GET", "404").inc(counts.not_found_hits)
        stats = node.engine.stats()
        for event in ("hits", "misses", "evictions"):
            self.cache_events.labels(event).inc(self._grown(event, stats[event]))
        self.cache_size.labels("positive").set(stats["entries"])
        self.cache_size.labels("negative").set(stats["negative_entries"])
        self.cache_bytes.set(stats["bytes"])
        self.pool.labels("open").set(node.pool.get_size())
        self.pool.labels("idle").set(node.pool.get_idle_size())
        self._flush_counts(node)

    def _flush_counts(self, node: Any) -> None:
        sealer = node.store.sealer
        self.signatures.labels("made").inc(self._grown("made", getattr(sealer, "sealed", 0)))
        upstream = node.forwarder.upstream if node.forwarder is not None else None
        if upstream is not None:
            self.upstream.inc(self._grown("upstream", upstream.calls))
            self.signatures.labels("verified").inc(self._grown("verified", upstream.verified))
            self.signatures.labels("refused").inc(self._grown("refused", upstream.refused))
        self.stale.inc(self._grown("stale", node.engine.stale_answers))
        health = node.health
        self.database.set(1 if health.available else 0)
        self.refused.labels("read").inc(self._grown("refused_reads", health.refused_total_reads))
        self.refused.labels("write").inc(self._grown("refused_writes", health.refused_total_writes))
        if node.follower is not None:
            self.follower.inc(self._grown("applied", node.follower.applied))
            self.follower_lag.set(time.monotonic() - node.follower.caught_up_at)
        self._flush_mirrors(node)
        door = getattr(node, "front_door", None)
        if door is not None:
            self.connections.set(door.open_connections)
            self.closed.inc(self._grown("closed", door.closed_for_room))

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.flush()

    def _flush_mirrors(self, node: Any) -> None:
        """Lag and rejections of the mirrors this process follows (one process follows each)."""
        replication = getattr(node, "replication", None)
        mirroring = replication.mirroring if replication is not None else None
        followed = set()
        for following in (mirroring.following.values() if mirroring is not None else ()):
            follower = following.follower
            followed.add(follower.prefix)
            self.mirror_lag.labels(follower.prefix).set(max(0, follower.origin_head - (follower.cursor or 0)))
            self.mirror_rejected.labels(follower.prefix).inc(self._grown(f"rejected {id(follower)}", follower.rejected))
        for prefix in self._mirrors - followed:  # removed, or followed by another process now: 0 from this one
            self.mirror_lag.labels(prefix).set(0)
        self._mirrors = followed

    def exposition(self) -> bytes:
        """The Prometheus text of the whole node (all workers) when shared, else of this process."""
        self.flush()
        if self._directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self._directory))
        return generate_latest(registry)


def query_observer(metrics: NodeMetrics):
    """An observer of the database pool's queries: each one's elapsed time, by its first SQL word."""

    def observe(record: Any) -> None:
        words = (getattr(record, "query", "") or "").lstrip().split(None, 1)
        operation = words[0].rstrip(";").upper() if words else "?"
        metrics.observe_query(operation or "?", float(getattr(record, "elapsed", 0.0)))

    return observe
