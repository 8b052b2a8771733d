"""Warm-up at start: bounded in items and time, in the background, stopping quietly when Redis or the source fails."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import redis

from statemgr.cache import WarmItem, keys
from tests.integration import cache_fixtures
from tests.integration.cache_fixtures import Caches, Loader, proxied
from tests.integration.tcpproxy import TcpProxy

redis_url = cache_fixtures.redis_url
direct = cache_fixtures.direct
tenant = cache_fixtures.tenant
caches = cache_fixtures.caches
proxy = cache_fixtures.proxy


class Source:
    """Open conversations as the phase-2 query would yield them; counts what was pulled."""

    def __init__(self, tenant: uuid.UUID, count: int, delay: float = 0.0, fail_at: int = -1) -> None:
        self.tenant, self.count, self.delay, self.fail_at = tenant, count, delay, fail_at
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[WarmItem]:
        for i in range(self.count):
            if i == self.fail_at:
                raise RuntimeError("the warm-up query failed")
            if self.delay:
                await asyncio.sleep(self.delay)
            self.pulled += 1
            yield keys.conversation_by_whatsapp(self.tenant, f"wa-{i}"), f"\x0aconv-{i}".encode(), 3600.0


async def test_warm_fills_redis_for_later_reads(caches: Caches, tenant: uuid.UUID, direct: redis.Redis) -> None:
    cache = await caches.make()
    report = await cache.warm(Source(tenant, 450))

    assert (report.stored, report.skipped, report.stopped) == (450, 0, "exhausted")
    assert direct.get(f"sm:{{{tenant}}}:conv:wa:wa-449") == b"\x0aconv-449"
    assert 3_200_000 <= direct.pttl(f"sm:{{{tenant}}}:conv:wa:wa-0") <= 3_600_000
    load = Loader(b"\x0aunused")
    assert await cache.get_or_load(keys.conversation_by_whatsapp(tenant, "wa-7"), load) == b"\x0aconv-7"
    assert load.calls == 0 and cache.stats.warmed == 450


async def test_warm_stops_at_the_item_limit(caches: Caches, tenant: uuid.UUID, direct: redis.Redis) -> None:
    cache = await caches.make(warm_max_items=120)
    source = Source(tenant, 1000)
    report = await cache.warm(source)

    assert (report.stored, report.stopped, source.pulled) == (120, "max_items", 120)
    assert len(list(direct.scan_iter(match=f"sm:{{{tenant}}}:conv:*", count=1000))) == 120


async def test_warm_stops_at_the_deadline_in_the_background(caches: Caches, tenant: uuid.UUID) -> None:
    cache = await caches.make(warm_max_seconds=0.3)
    started = time.perf_counter()
    task = cache.start_warming(Source(tenant, 1000, delay=0.002))
    assert time.perf_counter() - started < 0.05, "starting the warm-up must not wait for it"

    report = await task

    assert report.stopped == "deadline" and 0.28 <= report.seconds < 0.8
    assert 0 < report.stored < 1000


async def test_warm_survives_a_failing_source_and_redis_being_away(
    caches: Caches, proxy: TcpProxy, tenant: uuid.UUID
) -> None:
    cache = await caches.make()
    report = await cache.warm(Source(tenant, 500, fail_at=250))
    assert (report.stopped, report.stored) == ("source_failed", 250)  # what came before the failure

    away = await caches.make(url=proxied(caches.url, proxy), wait_live=False)
    await proxy.cut()
    started = time.perf_counter()
    report = await away.warm(Source(tenant, 500))
    assert report.stopped == "redis_unavailable" and time.perf_counter() - started < 0.5
