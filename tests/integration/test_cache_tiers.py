"""The read path through both tiers, TTLs, "not found" answers, and invalidation across two processes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from prometheus_client import generate_latest

from statemgr import metrics
from statemgr.cache import NEGATIVE, keys
from tests.integration import cache_fixtures
from tests.integration.cache_fixtures import Caches, Loader, until

redis_url = cache_fixtures.redis_url
direct = cache_fixtures.direct
tenant = cache_fixtures.tenant
caches = cache_fixtures.caches


async def test_miss_then_redis_hit_then_local_hit(caches: Caches, tenant: uuid.UUID, direct: redis.Redis) -> None:
    key = keys.conversation_by_whatsapp(tenant, "wa-conv-1")
    first, second = await caches.make(), await caches.make()
    load = Loader(b"\x0aconversation-1")

    assert await first.get_or_load(key, load) == b"\x0aconversation-1"  # local miss, Redis miss, load
    assert direct.get(key.text) == b"\x0aconversation-1"
    assert await first.get_or_load(key, load) == b"\x0aconversation-1"  # local hit
    assert await second.get_or_load(key, load) == b"\x0aconversation-1"  # local miss, Redis hit
    assert await second.get_or_load(key, load) == b"\x0aconversation-1"  # local hit
    assert load.calls == 1

    one, two = first.stats.by_kind[keys.Kind.CONVERSATION], second.stats.by_kind[keys.Kind.CONVERSATION]
    assert (one.local_misses, one.redis_misses, one.loads, one.local_hits) == (1, 1, 1, 1)
    assert (two.local_misses, two.redis_hits, two.loads, two.local_hits) == (1, 1, 0, 1)
    text = generate_latest(metrics.registry(cache=second)).decode()
    assert 'statemgr_cache_hits_total{cache="conversation",tier="redis"} 1.0' in text
    assert 'statemgr_cache_hits_total{cache="conversation",tier="local"} 1.0' in text
    assert 'statemgr_cache_misses_total{cache="conversation",tier="local"} 1.0' in text
    assert 'statemgr_cache_loads_total{cache="customer"} 0.0' in text


async def test_each_kind_has_its_ttl_with_jitter(caches: Caches, tenant: uuid.UUID, direct: redis.Redis) -> None:
    cache = await caches.make(ttl={keys.Kind.CONVERSATION: 600.0, keys.Kind.MAPPING: 600.0, keys.Kind.CUSTOMER: 60.0})
    for i in range(20):
        await cache.get_or_load(keys.customer(tenant, uuid.uuid4()), Loader(b"\x0ac" + bytes([i])))
        await cache.get_or_load(keys.outbound_route(tenant, f"gen-{i}"), Loader(b"\x0am"))
    await cache.get_or_load(keys.conversation(tenant, uuid.uuid4()), Loader(b"\x0aclosed"), ttl=30)

    customer_ttls = [direct.pttl(k) for k in direct.scan_iter(match=f"sm:{{{tenant}}}:cust:*")]
    mapping_ttls = [direct.pttl(k) for k in direct.scan_iter(match=f"sm:{{{tenant}}}:map:*")]
    (closed_ttl,) = [direct.pttl(k) for k in direct.scan_iter(match=f"sm:{{{tenant}}}:conv:*")]
    assert len(customer_ttls) == 20 and all(50_000 <= t <= 60_000 for t in customer_ttls)  # 4 s for a slow machine
    assert len(mapping_ttls) == 20 and all(530_000 <= t <= 600_000 for t in mapping_ttls)
    assert len(set(customer_ttls)) > 10, "jitter spreads expiry"
    assert 23_000 <= closed_ttl <= 30_000


async def test_not_found_is_cached_briefly(caches: Caches, tenant: uuid.UUID, direct: redis.Redis) -> None:
    cache = await caches.make(negative_ttl=2.0)
    key = keys.customer_by_phone(tenant, "+447400123456")
    absent = Loader(None)
    assert await cache.get_or_load(key, absent) is None
    assert await cache.get_or_load(key, absent) is None  # local tier
    assert await (await caches.make()).get_or_load(key, absent) is None  # Redis
    assert absent.calls == 1
    assert direct.get(key.text) == NEGATIVE and 0 < direct.pttl(key.text) <= 2000

    await cache.invalidate(tenant, [key])  # the customer was created: its keys are invalidated
    assert await cache.get_or_load(key, Loader(b"\x0acustomer")) == b"\x0acustomer"


async def test_invalidation_reaches_the_other_process(caches: Caches, tenant: uuid.UUID, direct: redis.Redis) -> None:
    conversation_id = uuid.uuid4()
    written = keys.conversation_keys(tenant, conversation_id, "wa-7", ["gen-old", "gen-new"])
    by_id, by_wa = keys.conversation(tenant, conversation_id), keys.conversation_by_whatsapp(tenant, "wa-7")
    writer, reader = await caches.make(), await caches.make()
    for cache in (writer, reader):
        for key in (by_id, by_wa):
            assert await cache.get_or_load(key, Loader(b"\x0aactive")) == b"\x0aactive"
    assert reader.local_entries == 2

    await writer.invalidate(tenant, written)  # after the transaction that closed the conversation committed

    assert direct.get(by_id.text) is None and direct.get(by_wa.text) is None
    assert await writer.get_or_load(by_id, Loader(b"\x0aclosed")) == b"\x0aclosed"
    await until(lambda: reader.local_entries == 0, "the reader hears the invalidation")
    assert await reader.get_or_load(by_wa, Loader(b"\x0aclosed")) == b"\x0aclosed"


async def test_invalidate_refuses_another_tenants_keys(caches: Caches, tenant: uuid.UUID) -> None:
    cache = await caches.make()
    other = keys.customer(uuid.uuid4(), uuid.uuid4())
    with pytest.raises(ValueError, match="tenant"):
        await cache.invalidate(tenant, [keys.customer(tenant, uuid.uuid4()), other])
    assert cache.stats.invalidations == 0


async def test_a_cancelled_writer_still_invalidates(caches: Caches, tenant: uuid.UUID, direct: redis.Redis) -> None:
    cache = await caches.make()
    key = keys.conversation_by_genesys(tenant, "gen-1")
    assert await cache.get_or_load(key, Loader(b"\x0aold")) == b"\x0aold"

    writer = asyncio.create_task(cache.invalidate(tenant, [key]))  # the RPC is cancelled after its commit
    await asyncio.sleep(0)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer

    await until(lambda: direct.get(key.text) is None, "the invalidation reaches Redis anyway", timeout=1)
