"""Fixtures and helpers of the tests of the cached RPCs (test_cache_paths*.py): servers with Redis on, called
through the generated stubs. A test module re-exports the fixtures it uses, as with cache_fixtures.

Isolation: every test has its own database, so its tenants are new; their keys (`sm:{<tenant>}:*`) are deleted
from Redis after the test. The pub/sub channel is shared, which is harmless: other tests' invalidations name other
tenants' keys.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import grpc
import psycopg
import pytest
import redis

from statemgr import server as server_mod
from statemgr.app import App
from statemgr.cache import Kind
from statemgr.config import Settings
from tests.integration.cache_fixtures import until
from tests.integration.conftest import Client, Clients

T = TypeVar("T")
Outcome = Any  # a response message, or the grpc.StatusCode the call failed with


@pytest.fixture
def forget_tenants(database_url: str, redis_url: str) -> Iterator[None]:
    """After the test, deletes the Redis keys of every tenant of the test's database."""
    yield
    with psycopg.connect(database_url, autocommit=True) as conn:  # the owner: row-level security does not apply
        tenant_ids = [row[0] for row in conn.execute("SELECT id FROM tenants").fetchall()]
    client = redis.Redis.from_url(redis_url)
    try:
        for tenant_id in tenant_ids:
            found = list(client.scan_iter(match=f"sm:{{{tenant_id}}}:*", count=1000))
            if found:
                client.delete(*found)
    finally:
        client.close()


@pytest.fixture
def cached_settings(settings: Settings, redis_url: str, forget_tenants: None) -> Settings:
    """The in-process server's settings with the cache on (a short pub/sub ping, so faults are noticed quickly;
    a Redis timeout of 500 ms: a loaded machine is no outage, and the fault tests set their own)."""
    return dataclasses.replace(settings, redis_url=redis_url, cache_pubsub_ping_seconds=0.2, redis_timeout_ms=500)


@dataclasses.dataclass
class Node:
    """One server (its own pools, cache and pub/sub, like a process of its own) and clients of it."""

    server: server_mod.Server
    clients: Clients

    @property
    def app(self) -> App:
        return self.server.app

    def client(self, like: Client) -> Client:
        """A client of this server with the same tenant key as `like`."""
        return self.clients.with_key(like.api_key, like.tenant_id)

    def counts(self, kind: Kind) -> tuple[int, int]:
        """(loads from PostgreSQL, hits in either tier) of one kind of key."""
        stats = self.app.cache.stats.by_kind[kind]
        return stats.loads, stats.local_hits + stats.redis_hits


class Cluster:
    """Servers on one database and one Redis, started on demand and stopped after the test."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nodes: list[Node] = []

    async def start(self, **changes: Any) -> Node:
        settings = dataclasses.replace(self.settings, **changes)
        started = await server_mod.start(App.build(settings), settings.listen)
        node = Node(started, Clients(started.port))
        self.nodes.append(node)
        cache = started.app.cache
        if cache.redis.enabled and cache.options.local_max_entries > 0:
            await until(lambda: cache.local_live, "the server's cache subscribes to invalidations")
        return node

    async def close(self) -> None:
        for node in self.nodes:
            await node.clients.close()
            await node.server.stop(grace=0.5)


@pytest.fixture
async def cluster(cached_settings: Settings) -> AsyncIterator[Cluster]:
    opened = Cluster(cached_settings)
    yield opened
    await opened.close()


async def outcome(call: Awaitable[T]) -> T | grpc.StatusCode:
    """The call's response, or the status code it failed with."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()


async def read_twice_cached(node: Node, kind: Kind, call: Callable[[], Awaitable[T]]) -> T | grpc.StatusCode:
    """Reads twice through `node`; asserts the second read was served by its cache with the same answer (a
    "not found" too); returns that answer."""
    first = await outcome(call())
    loads, hits = node.counts(kind)
    second = await outcome(call())
    assert node.counts(kind) == (loads, hits + 1), "the second read was not served from the cache"
    assert second == first
    return second


async def eventually(call: Callable[[], Awaitable[T]], check: Callable[[Any], bool], timeout: float = 0.0) -> Any:
    """Repeats `call` until `check` accepts its outcome, within `timeout`; returns it. By default the first answer
    must pass: without an in-process tier a read after a write that returned sees it at once, in any process
    (docs/caching.md, "Read after write"). A test of the in-process tier gives the pub/sub delivery time."""
    deadline = time.monotonic() + timeout
    while True:
        result = await outcome(call())
        if check(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still {result!r} after {timeout} s")
        await asyncio.sleep(0.005)
