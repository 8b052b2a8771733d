"""Prometheus metrics on an HTTP port: RPCs (count and latency by method and code), the cache, the DB pool.

Each server process serves its own metrics. With `statemgr serve --workers N` worker i listens on the metrics port
plus i (see `worker_listen`): a scrape config lists N targets and every series stays per-process, with no shared
files as prometheus-client's multiprocess mode would need (and no loss of the custom collectors it cannot merge).

RPC counts are the histogram's `statemgr_rpc_duration_seconds_count`: one series per method and code, no second
counter to keep in step. Cache and pool figures are read at scrape time by a collector (`AppCollector`): the hot
path only bumps plain integers (statemgr.cache.stats).

Metrics defined elsewhere with prometheus_client's default registry (statemgr.events.metrics) are served too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any, Protocol
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from statemgr.cache import Cache
from statemgr.cache.breaker import State

_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPC_DURATION = Histogram(
    "statemgr_rpc_duration_seconds",
    "RPC latency in the server, by full method name and status code; _count is the number of RPCs.",
    ("method", "code"),
    buckets=_BUCKETS,
)
_rpc_children: dict[str, dict[str, Any]] = {}

GENERAL_PATH = Counter(
    "statemgr_general_path",
    "Writes that took more than their usual one or two round trips, by RPC and reason (a repeated message, reports"
    " parked for it, a conversation to claim, or opened by another caller meanwhile (the attempt rolled back and"
    " started again), a create conflict, an unknown message id). A rising rate shows clients retrying or racing.",
    ("rpc", "reason"),
)


def observe_rpc(method: str, code: str, seconds: float) -> None:
    """Records one finished RPC, e.g. ("/statemgr.v1.ConversationService/LookupConversation", "OK", 0.0004)."""
    by_code = _rpc_children.get(method)
    if by_code is None:
        by_code = _rpc_children[method] = {}
    child = by_code.get(code)
    if child is None:
        child = by_code[code] = RPC_DURATION.labels(method, code)
    child.observe(seconds)


class PoolStats(Protocol):
    def get_stats(self) -> dict[str, int]: ...


# psycopg_pool's get_stats() keys: gauges as they are; counters (since the pool opened) with _total; *_ms in seconds.
_POOL_GAUGES = {
    "pool_min": "configured minimum connections",
    "pool_max": "configured maximum connections",
    "pool_size": "connections open or being opened",
    "pool_available": "idle connections in the pool",
    "requests_waiting": "requests waiting for a connection now",
}
_POOL_COUNTERS = {
    "requests_num": ("requests", "connection requests", 1),
    "requests_queued": ("requests_queued", "requests that had to wait for a connection", 1),
    "requests_errors": ("requests_errors", "requests that failed (timeout, pool closed)", 1),
    "requests_wait_ms": ("requests_wait_seconds", "time requests spent waiting for a connection", 1000),
    "usage_ms": ("usage_seconds", "time connections were lent out", 1000),
    "returns_bad": ("returns_bad", "connections returned in a bad state", 1),
    "connections_num": ("connections", "connection attempts", 1),
    "connections_ms": ("connections_seconds", "time spent opening connections", 1000),
    "connections_errors": ("connections_errors", "failed connection attempts", 1),
    "connections_lost": ("connections_lost", "connections found broken", 1),
}


class AppCollector(Collector):
    """Reads the cache's counters and the pool's statistics when scraped."""

    def __init__(self, pool: PoolStats | None, cache: Cache | None) -> None:
        self._pool = pool
        self._cache = cache

    def collect(self) -> Iterable[Metric]:
        if self._cache is not None:
            yield from _cache_metrics(self._cache)
        if self._pool is not None:
            yield from _pool_metrics(self._pool.get_stats())


def _cache_metrics(cache: Cache) -> Iterable[Metric]:
    stats = cache.stats
    hits = CounterMetricFamily("statemgr_cache_hits", "Cache hits by cache and tier.", labels=("cache", "tier"))
    misses = CounterMetricFamily("statemgr_cache_misses", "Cache misses by cache and tier.", labels=("cache", "tier"))
    skipped = CounterMetricFamily(
        "statemgr_cache_redis_skipped", "Reads that did not ask Redis (off, open, recovering).", labels=("cache",)
    )
    loads = CounterMetricFamily("statemgr_cache_loads", "Loads from PostgreSQL after a miss.", labels=("cache",))
    for kind, by in stats.by_kind.items():
        hits.add_metric((kind.label, "local"), by.local_hits)
        hits.add_metric((kind.label, "redis"), by.redis_hits)
        misses.add_metric((kind.label, "local"), by.local_misses)
        misses.add_metric((kind.label, "redis"), by.redis_misses)
        skipped.add_metric((kind.label,), by.redis_skipped)
        loads.add_metric((kind.label,), by.loads)
    yield from (hits, misses, skipped, loads)
    yield from _cache_health(cache)


def _cache_health(cache: Cache) -> Iterable[Metric]:
    stats = cache.stats
    counters = {
        "redis_errors": ("Redis calls that failed or timed out.", stats.redis_errors),
        "redis_read_batches": ("MGETs sent for reads (the reads of a loop turn share one).", stats.read_batches),
        "breaker_opens": ("Times the Redis circuit breaker opened.", cache.breaker.opens),
        "stale_sets_refused": ("Loaded values not stored: invalidated while loading.", stats.stale_sets_refused),
        "invalidations": ("Keys invalidated by this process.", stats.invalidations),
        "invalidations_dropped": ("Invalidations lost: pending queue full.", stats.invalidations_dropped),
        "local_flushes": ("Flushes of the in-process tier (pub/sub up or down).", stats.local_flushes),
        "warmed": ("Entries stored by warm-ups.", stats.warmed),
    }
    for name, (help_text, value) in counters.items():
        yield CounterMetricFamily(f"statemgr_cache_{name}", help_text, value=value)
    gauges = {
        "breaker_open": ("1 while the Redis breaker is open or half-open.", cache.breaker.state is not State.CLOSED),
        "local_live": ("1 while the in-process tier is in use (pub/sub up).", cache.local_live),
        "local_entries": ("Entries in the in-process tier.", cache.local_entries),
        "invalidations_pending": ("Invalidations waiting for Redis to come back.", cache.pending_invalidations),
    }
    for name, (help_text, number) in gauges.items():
        yield GaugeMetricFamily(f"statemgr_cache_{name}", help_text, value=float(number))


def _pool_metrics(raw: dict[str, int]) -> Iterable[Metric]:
    for key, help_text in _POOL_GAUGES.items():
        yield GaugeMetricFamily(f"statemgr_db_pool_{key}", f"DB pool: {help_text}.", value=raw.get(key, 0))
    for key, (name, help_text, divisor) in _POOL_COUNTERS.items():
        value = raw.get(key, 0) / divisor
        yield CounterMetricFamily(f"statemgr_db_pool_{name}", f"DB pool: {help_text}.", value=value)


class _DefaultRegistry(Collector):
    """Everything registered the usual way (the RPC histogram, statemgr.events.metrics, process and GC figures)."""

    def collect(self) -> Iterable[Metric]:
        return prometheus_client.REGISTRY.collect()


def registry(pool: PoolStats | None = None, cache: Cache | None = None) -> CollectorRegistry:
    """What one server process serves: the default registry's metrics, plus its own pool and cache.

    The app's collector lives in a registry of its own, not the default one, so that several Apps in one process
    (as in the tests) do not collide.
    """
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_DefaultRegistry())
    reg.register(AppCollector(pool, cache))
    return reg


class MetricsServer:
    """prometheus-client's HTTP server (a daemon thread); `port` is the bound port."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_port

    async def stop(self) -> None:
        await asyncio.to_thread(self._server.shutdown)
        self._server.server_close()
        await asyncio.to_thread(self._thread.join, 5.0)


def start(listen: str, reg: CollectorRegistry) -> MetricsServer:
    """Serves `reg` on `listen` ("host:port", "[v6]:port"; port 0 picks a free one) at any path."""
    host, port = split_listen(listen)
    server, thread = prometheus_client.start_http_server(port, addr=host, registry=reg)
    return MetricsServer(server, thread)


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # ":9464" means every interface, as it does for gRPC
    return host, int(port)


def worker_listen(listen: str, index: int) -> str:
    """Worker `index`'s metrics address: the port plus `index` (port 0 stays 0: each worker picks its own)."""
    if not listen:
        return listen
    host, _, port = listen.rpartition(":")
    number = int(port)
    return f"{host}:{number + index if number else 0}"
