"""The cache's counters: plain integers bumped on the hot path, read by the metrics collector at scrape time.

Plain attributes rather than prometheus_client objects: an increment is one attribute store, no lock, no label
lookup, which matters on a path that should cost microseconds.
"""

from __future__ import annotations

from statemgr.cache.keys import Kind


class KindStats:
    """Counters of one kind of key (the metrics' `cache` label)."""

    __slots__ = ("loads", "local_hits", "local_misses", "redis_hits", "redis_misses", "redis_skipped")

    def __init__(self) -> None:
        self.local_hits = 0
        self.local_misses = 0
        self.redis_hits = 0
        self.redis_misses = 0
        self.redis_skipped = 0  # Redis not asked: disabled, breaker open, or it failed
        self.loads = 0


class CacheStats:
    """Every counter of one Cache."""

    __slots__ = (
        "by_kind",
        "invalidations",
        "invalidations_dropped",
        "local_flushes",
        "read_batches",
        "redis_errors",
        "stale_sets_refused",
        "warmed",
    )

    def __init__(self) -> None:
        self.by_kind: dict[Kind, KindStats] = {kind: KindStats() for kind in Kind.ALL}
        self.redis_errors = 0  # timeouts and connection errors
        self.read_batches = 0  # MGETs sent for reads
        self.stale_sets_refused = 0  # loads not stored because the key was invalidated meanwhile
        self.invalidations = 0  # keys invalidated by this process
        self.invalidations_dropped = 0  # keys whose Redis invalidation was lost (pending queue full)
        self.local_flushes = 0
        self.warmed = 0
