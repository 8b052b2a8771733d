"""Metrics exposition (RPCs, cache counters, DB pool), worker metrics ports, and the cache's settings."""

from __future__ import annotations

from prometheus_client import generate_latest

from statemgr import config, metrics
from statemgr.cache import Cache, keys
from statemgr.cache.options import CacheOptions


class FakePool:
    def get_stats(self) -> dict[str, int]:
        return {"pool_min": 2, "pool_max": 10, "pool_size": 3, "pool_available": 1, "requests_wait_ms": 1500}


def test_rpcs_cache_and_pool_are_exposed() -> None:
    cache = Cache(CacheOptions(redis_url=""))
    cache.stats.by_kind[keys.Kind.MAPPING].local_hits = 7
    cache.stats.by_kind[keys.Kind.CUSTOMER].redis_misses = 2
    metrics.observe_rpc("/statemgr.v1.ConversationService/LookupConversation", "OK", 0.0004)
    metrics.observe_rpc("/statemgr.v1.ConversationService/LookupConversation", "OK", 0.003)

    text = generate_latest(metrics.registry(FakePool(), cache)).decode()

    assert 'statemgr_cache_hits_total{cache="mapping",tier="local"} 7.0' in text
    assert 'statemgr_cache_misses_total{cache="customer",tier="redis"} 2.0' in text
    assert "statemgr_cache_breaker_open 0.0" in text and "statemgr_cache_local_live 0.0" in text
    assert "statemgr_db_pool_pool_size 3.0" in text and "statemgr_db_pool_requests_wait_seconds_total 1.5" in text
    (count,) = [
        line
        for line in text.splitlines()
        if line.startswith('statemgr_rpc_duration_seconds_count{code="OK",')
        and 'method="/statemgr.v1.ConversationService/LookupConversation"' in line
    ]
    assert float(count.split()[-1]) >= 2


def test_worker_metrics_ports() -> None:
    assert metrics.worker_listen("127.0.0.1:9464", 0) == "127.0.0.1:9464"
    assert metrics.worker_listen("127.0.0.1:9464", 3) == "127.0.0.1:9467"
    assert metrics.worker_listen("[::]:9464", 1) == "[::]:9465"
    assert metrics.worker_listen("127.0.0.1:0", 2) == "127.0.0.1:0"
    assert metrics.worker_listen("", 2) == ""
    assert metrics.split_listen("[::1]:9464") == ("::1", 9464)
    assert metrics.split_listen(":9464") == ("0.0.0.0", 9464)


def test_cache_settings_come_from_the_environment() -> None:
    settings = config.load(
        {
            "STATEMGR_REDIS_TIMEOUT_MS": "20",
            "STATEMGR_CACHE_CUSTOMER_TTL_SECONDS": "600",
            "STATEMGR_CACHE_TTL_JITTER": "0.2",
            "STATEMGR_CACHE_LOCAL_TTL_SECONDS": "2.5",
            "STATEMGR_CACHE_BREAKER_FAILURES": "7",
        }
    )
    options = CacheOptions.from_settings(settings)
    assert options.redis_timeout == 0.02 and options.ttl[keys.Kind.CUSTOMER] == 600.0
    assert options.ttl[keys.Kind.CONVERSATION] == 86400.0 and options.ttl[keys.Kind.MAPPING] == 86400.0
    assert (options.jitter, options.local_ttl, options.breaker_failures) == (0.2, 2.5, 7)
    defaults = CacheOptions.from_settings(config.Settings())
    assert defaults.redis_timeout == 0.05 and defaults == CacheOptions()
