"""The cache's settings, taken from the service's STATEMGR_* settings (see config.py and docs/caching.md)."""

from __future__ import annotations

import dataclasses
import random

from statemgr.cache.keys import Kind
from statemgr.config import Settings


@dataclasses.dataclass(frozen=True, slots=True)
class CacheOptions:
    redis_url: str = "redis://localhost:6379/0"  # empty: no Redis, every read goes to its loader
    redis_timeout: float = 0.05
    invalidate_timeout: float = 0.25  # a write's invalidation: its answer waits for it (docs/caching.md)
    redis_max_connections: int = 64
    ttl: dict[Kind, float] = dataclasses.field(
        default_factory=lambda: {Kind.CONVERSATION: 86400.0, Kind.MAPPING: 86400.0, Kind.CUSTOMER: 3600.0}
    )
    negative_ttl: float = 5.0  # "not found" answers; 0 stores none
    jitter: float = 0.1  # a stored TTL is shortened by up to this fraction, so entries written together expire apart
    local_max_entries: int = 0  # 0: no in-process tier (it cannot keep read-after-write across processes)
    local_ttl: float = 3.0
    breaker_failures: int = 5
    breaker_open_seconds: float = 2.0
    pubsub_ping_seconds: float = 0.5
    generation_ttl: float = 120.0
    warm_max_items: int = 50_000
    warm_max_seconds: float = 10.0
    pending_invalidations_max: int = 100_000

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheOptions:
        return cls(
            redis_url=settings.redis_url,
            redis_timeout=settings.redis_timeout_ms / 1000,
            invalidate_timeout=settings.cache_invalidate_timeout_ms / 1000,
            redis_max_connections=settings.redis_max_connections,
            ttl={
                Kind.CONVERSATION: float(settings.cache_conversation_ttl_seconds),
                Kind.MAPPING: float(settings.cache_mapping_ttl_seconds),
                Kind.CUSTOMER: float(settings.cache_customer_ttl_seconds),
            },
            negative_ttl=settings.cache_negative_ttl_seconds,
            jitter=settings.cache_ttl_jitter,
            local_max_entries=settings.cache_local_max_entries,
            local_ttl=settings.cache_local_ttl_seconds,
            breaker_failures=settings.cache_breaker_failures,
            breaker_open_seconds=settings.cache_breaker_open_seconds,
            pubsub_ping_seconds=settings.cache_pubsub_ping_seconds,
            generation_ttl=float(settings.cache_generation_ttl_seconds),
            warm_max_items=settings.cache_warm_max_items,
            warm_max_seconds=settings.cache_warm_max_seconds,
            pending_invalidations_max=settings.cache_pending_invalidations_max,
        )

    def jittered_ms(self, seconds: float) -> int:
        """A TTL in milliseconds for Redis, shortened by a random fraction up to `jitter`."""
        return int(seconds * 1000 * (1 - self.jitter * random.random()))

    @property
    def max_load_seconds(self) -> float:
        """A load (or warm-up) older than this is not stored: its generation key may have expired meanwhile."""
        return self.generation_ttl / 2
