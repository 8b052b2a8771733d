"""The cache on a real three-master Redis Cluster (tests/integration/rediscluster.py), through a
`redis+cluster://` URL: the cache suites' scenarios run again here unchanged (imported below, renamed
`test_cluster_*`), then what a cluster adds: tenants on every node, invalidation heard by every process whichever
node the tenant's slot is on, a node killed and a slot migrated while lookups run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from statemgr.cache import Cache, keys
from tests.integration import (
    cache_fixtures,
    rediscluster,
    reruns,
    test_cache_race,
    test_cache_singleflight,
    test_cache_tiers,
)
from tests.integration.cache_fixtures import Caches, Loader, until

tenant = cache_fixtures.tenant


class ClusterCaches(Caches):
    """As the suites' Caches; a cache is ready once it has also learnt the cluster's topology, as it is once it
    has subscribed (until then its calls fail open, which the suites' timing-exact scenarios do not expect)."""

    async def make(self, url: str | None = None, wait_live: bool = True, **options: Any) -> Cache:
        # A call's first use of each of three nodes opens a connection: on this shared, loaded machine 50 ms is
        # sometimes too short for that, and a call that fails open breaks the timing-exact scenarios.
        options.setdefault("redis_timeout", 0.25)
        cache = await super().make(url, wait_live, **options)
        if cache.redis.topology is not None:
            await cache.redis.topology
        return cache


@pytest.fixture
async def caches(redis_url: str) -> AsyncIterator[Caches]:
    opened = ClusterCaches(redis_url)
    yield opened
    await opened.close()


cluster = pytest.fixture(scope="module", name="cluster")(rediscluster.running)


@pytest.fixture(scope="module")
def redis_url(cluster: rediscluster.RedisCluster) -> str:
    return cluster.url


@pytest.fixture
def direct(cluster: rediscluster.RedisCluster) -> Iterator[redis.RedisCluster]:
    client = cluster.sync_client()
    yield client
    client.close()


reruns.rerun(globals(), "cluster", [test_cache_tiers, test_cache_race, test_cache_singleflight], set())


def tenants_on_every_node(cluster: rediscluster.RedisCluster, direct: redis.RedisCluster) -> list[uuid.UUID]:
    """One tenant whose slot is on each node."""
    found: dict[int, uuid.UUID] = {}
    while len(found) < len(cluster.nodes):
        tenant_id = uuid.uuid4()
        found.setdefault(cluster.owner(direct.keyslot(keys.tenant_prefix(tenant_id))).port, tenant_id)
    return list(found.values())


async def test_a_tenants_keys_and_scripts_stay_in_one_slot(
    caches: Caches, tenant: uuid.UUID, direct: redis.RedisCluster
) -> None:
    cache = await caches.make()
    conversation_id = uuid.uuid4()
    written = keys.conversation_keys(tenant, conversation_id, "wa-1", ["gen-1"])
    for key in written:
        assert await cache.get_or_load(key, Loader(b"\x0av1")) == b"\x0av1"
    await cache.invalidate(tenant, written)  # one script over every key and its generation
    slots = {direct.keyslot(k) for k in direct.scan_iter(match=f"sm:{{{tenant}}}:*")}
    assert len(slots) == 1 and len(list(direct.scan_iter(match=f"sm:{{{tenant}}}:g:*"))) == len(written)
    assert cache.stats.redis_errors == 0


async def test_invalidation_reaches_every_process_whichever_node_the_tenant_is_on(
    caches: Caches, cluster: rediscluster.RedisCluster, direct: redis.RedisCluster
) -> None:
    processes = [await caches.make() for _ in range(3)]
    for tenant_id in tenants_on_every_node(cluster, direct):
        key = keys.conversation(tenant_id, uuid.uuid4())
        for cache in processes:
            assert await cache.get_or_load(key, Loader(b"\x0aold")) == b"\x0aold"  # now in every local tier
        await processes[0].invalidate(tenant_id, [key])
        for cache in processes[1:]:  # its local copy is dropped by the message it hears, then the new row loads
            assert await eventually(cache, key, b"\x0anew")


async def eventually(cache: Cache, key: keys.Key, value: bytes, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while await cache.get_or_load(key, Loader(value)) != value:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def lookups(cache: Cache, key: keys.Key, loader: Loader, stop: asyncio.Event) -> list[bytes | None]:
    answers = []
    while not stop.is_set():
        answers.append(await cache.get_or_load(key, loader))
        await asyncio.sleep(0.002)
    return answers


async def test_a_node_killed_while_lookups_run_answers_stay_right_and_the_cache_recovers(
    caches: Caches, cluster: rediscluster.RedisCluster, direct: redis.RedisCluster
) -> None:
    cache = await caches.make(local_max_entries=0, breaker_open_seconds=0.2)  # every lookup reaches Redis
    tenant_ids = tenants_on_every_node(cluster, direct)
    work = [(keys.conversation(t, uuid.uuid4()), Loader(f"\x0a{t}".encode())) for t in tenant_ids]
    stop = asyncio.Event()
    running = [asyncio.create_task(lookups(cache, key, loader, stop)) for key, loader in work]
    await asyncio.sleep(0.3)
    victim = cluster.owner(direct.keyslot(work[0][0].text))
    victim.kill()
    errors_before = cache.stats.redis_errors
    await asyncio.sleep(1.0)
    failed_over = cache.stats.redis_errors > errors_before  # its slots answered nothing: loads from "PostgreSQL"
    victim.start()
    cluster.wait_ok()
    await asyncio.sleep(0.5)
    stop.set()
    for (_, loader), answers in zip(work, await asyncio.gather(*running), strict=True):
        assert set(answers) == {loader.value}  # never a wrong or missing answer
    assert failed_over
    for key, loader in work:  # recovered: a value stored again is read from Redis, not loaded
        calls = loader.calls
        await cache.get_or_load(key, loader)
        await until(lambda: direct.get(key.text) is not None, "the value is in Redis again")  # noqa: B023
        await cache.get_or_load(key, loader)
        assert loader.calls <= calls + 1


async def test_a_slot_migrated_while_lookups_run_keeps_answers_right_and_moves_the_values(
    caches: Caches, cluster: rediscluster.RedisCluster, direct: redis.RedisCluster, tenant: uuid.UUID
) -> None:
    cache = await caches.make(local_max_entries=0)
    work = [(keys.customer(tenant, uuid.uuid4()), Loader(b"\x0a%d" % i)) for i in range(20)]
    for key, loader in work:
        await cache.get_or_load(key, loader)
    stop = asyncio.Event()
    running = [asyncio.create_task(lookups(cache, key, loader, stop)) for key, loader in work]
    slot = direct.keyslot(keys.tenant_prefix(tenant))
    source = cluster.owner(slot)
    target = next(n for n in cluster.nodes if n is not source)
    moved = await asyncio.to_thread(cluster.migrate_slot, slot, target)
    await asyncio.sleep(0.3)
    stop.set()
    for (_, loader), answers in zip(work, await asyncio.gather(*running), strict=True):
        assert set(answers) == {loader.value}
    assert moved >= len(work) and cluster.owner(slot) is target
    loads = sum(loader.calls for _, loader in work)
    for key, loader in work:
        assert await cache.get_or_load(key, loader) == loader.value
    assert sum(loader.calls for _, loader in work) == loads  # served from the new owner, nothing reloaded
