"""The App serves Prometheus metrics on STATEMGR_METRICS_LISTEN: RPCs, cache tiers, DB pool, process figures."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.request
import uuid

from statemgr import metrics
from statemgr.app import App
from statemgr.cache import keys
from statemgr.config import Settings
from tests.integration import cache_fixtures
from tests.integration.cache_fixtures import Loader

redis_url = cache_fixtures.redis_url


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        return str(response.read().decode())


async def test_app_serves_metrics_while_running(settings: Settings, redis_url: str) -> None:
    app = App.build(dataclasses.replace(settings, metrics_listen="127.0.0.1:0", redis_url=redis_url))
    await app.start()
    try:
        assert app.metrics is not None
        tenant = uuid.uuid4()
        await app.cache.get_or_load(keys.customer_by_whatsapp(tenant, "1"), Loader(None))
        await app.cache.invalidate(tenant, [keys.customer_by_whatsapp(tenant, "1")])
        metrics.observe_rpc("/statemgr.v1.CustomerService/LookupCustomer", "NOT_FOUND", 0.0007)

        text = await asyncio.to_thread(_scrape, app.metrics.port)

        assert 'statemgr_cache_loads_total{cache="customer"} 1.0' in text
        assert 'statemgr_cache_misses_total{cache="customer",tier="redis"} 1.0' in text
        assert "statemgr_cache_invalidations_total 1.0" in text
        assert "statemgr_db_pool_pool_max 10.0" in text and "statemgr_db_pool_requests_total" in text
        assert (
            'statemgr_rpc_duration_seconds_bucket{code="NOT_FOUND",'
            'le="0.001",method="/statemgr.v1.CustomerService/LookupCustomer"}' in text
        )
        assert "process_cpu_seconds_total" in text
    finally:
        await app.stop()
    assert app.metrics is None
