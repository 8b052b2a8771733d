"""Fixtures and helpers of the cache's integration tests (real Redis). A test module re-exports the fixtures it
uses (`caches = cache_fixtures.caches`), so pytest finds them without a shared conftest."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis

from statemgr.cache import Cache
from statemgr.cache.options import CacheOptions
from tests.integration import services
from tests.integration.tcpproxy import TcpProxy


class Caches:
    """Starts Caches (each one a 'process': its own connections and pub/sub) and stops them after the test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._started: list[Cache] = []

    async def make(self, url: str | None = None, wait_live: bool = True, **options: Any) -> Cache:
        options.setdefault("pubsub_ping_seconds", 0.2)
        options.setdefault("local_max_entries", 10_000)  # most of these tests look at the in-process tier too
        options.setdefault("redis_timeout", 0.5)  # a loaded machine is no outage; the fault tests set their own
        cache = Cache(CacheOptions(redis_url=self.url if url is None else url, **options))
        await cache.start()
        self._started.append(cache)
        if wait_live and cache.redis.enabled and cache.options.local_max_entries > 0:
            await until(lambda: cache.local_live, "the cache subscribes to invalidations")
        return cache

    async def close(self) -> None:
        for cache in self._started:
            await cache.stop()


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


class Loader:
    """A stand-in for the PostgreSQL query behind a key: counts calls, answers `value` after `delay` seconds."""

    def __init__(self, value: bytes | None, delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> bytes | None:
        self.calls += 1
        value = self.value  # read at the start, like a row selected before its result travels back
        if self.delay:
            await asyncio.sleep(self.delay)
        return value


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.require(services.REDIS_URL, 6379, "Redis")


@pytest.fixture
def direct(redis_url: str) -> Iterator[redis.Redis]:
    """A plain synchronous client straight to Redis, to look at what the cache stored."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def tenant(direct: redis.Redis) -> Iterator[uuid.UUID]:
    """A fresh tenant id; its keys are deleted after the test."""
    tenant_id = uuid.uuid4()
    yield tenant_id
    found = list(direct.scan_iter(match=f"sm:{{{tenant_id}}}:*", count=1000))
    if found:
        direct.delete(*found)


@pytest.fixture
async def caches(redis_url: str) -> AsyncIterator[Caches]:
    opened = Caches(redis_url)
    yield opened
    await opened.close()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of Redis, to cut or stall it; `proxied(redis_url, proxy)` is the URL through it."""
    parsed = urllib.parse.urlparse(redis_url)
    started = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    await started.start()
    yield started
    await started.close()


def proxied(url: str, proxy: TcpProxy) -> str:
    parsed = urllib.parse.urlparse(url)
    return urllib.parse.urlunparse(parsed._replace(netloc=f"{proxy.listen_host}:{proxy.port}"))
