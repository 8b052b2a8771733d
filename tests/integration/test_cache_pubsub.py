"""The local tier trusts only a live subscription: when pub/sub drops or hangs it is flushed and bypassed, and an
invalidation published meanwhile cannot leave a stale local entry behind once the subscription is back."""

from __future__ import annotations

import uuid

import redis

from statemgr.cache import Cache, keys
from tests.integration import cache_fixtures
from tests.integration.cache_fixtures import Caches, Loader, proxied, until
from tests.integration.tcpproxy import TcpProxy

redis_url = cache_fixtures.redis_url
direct = cache_fixtures.direct
tenant = cache_fixtures.tenant
caches = cache_fixtures.caches
proxy = cache_fixtures.proxy


def _kill_subscription(direct: redis.Redis, cache: Cache) -> None:
    """CLIENT KILL of exactly this cache's pub/sub connection (found by its client name)."""
    name = f"statemgr-cache-sub-{cache.origin}"
    (client,) = [c for c in direct.client_list(_type="pubsub") if c["name"] == name]
    direct.execute_command("CLIENT", "KILL", "ID", client["id"])


async def test_a_dropped_subscription_flushes_the_local_tier(
    caches: Caches, tenant: uuid.UUID, direct: redis.Redis
) -> None:
    cache = await caches.make()
    key = keys.conversation_by_whatsapp(tenant, "wa-1")
    load = Loader(b"\x0av1")
    assert await cache.get_or_load(key, load) == b"\x0av1"
    assert await cache.get_or_load(key, load) == b"\x0av1"
    stats = cache.stats.by_kind[keys.Kind.CONVERSATION]
    assert (cache.local_entries, stats.local_hits, cache.stats.local_flushes) == (1, 1, 1)  # 1: the first subscribe

    _kill_subscription(direct, cache)
    await until(lambda: cache.stats.local_flushes == 3, "the drop and the resubscription each flush the local tier")
    await until(lambda: cache.local_live, "the cache subscribes again")

    assert cache.local_entries == 0
    assert await cache.get_or_load(key, load) == b"\x0av1"  # from Redis, not the local tier
    assert (stats.local_hits, stats.redis_hits, load.calls) == (1, 1, 1)


async def test_an_invalidation_missed_while_pubsub_hung_is_not_served_stale(
    caches: Caches, proxy: TcpProxy, tenant: uuid.UUID, direct: redis.Redis
) -> None:
    reader = await caches.make(url=proxied(caches.url, proxy), redis_timeout=0.05)
    writer = await caches.make()
    key = keys.customer_by_whatsapp(tenant, "447400000002")
    assert await reader.get_or_load(key, Loader(b"\x0aold")) == b"\x0aold"
    assert reader.local_entries == 1

    proxy.stall()  # the reader's Redis link hangs: its subscription will hear nothing
    await writer.invalidate(tenant, [key])
    await until(lambda: not reader.local_live, "the reader notices its subscription hung")

    assert reader.local_entries == 0
    assert await reader.get_or_load(key, Loader(b"\x0anew")) == b"\x0anew"  # bypasses the local tier
    proxy.unstall()
    await until(lambda: reader.local_live, "the subscription is back")
    assert await reader.get_or_load(key, Loader(b"\x0anew")) == b"\x0anew"
