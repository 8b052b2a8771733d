"""The stale-set race, scripted step by step: a reader loads the old row, a writer commits and invalidates, the
reader then tries to store what it loaded. The old value must not come back, in Redis or in any local tier."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import redis

from statemgr.cache import Cache, WarmItem, keys
from tests.integration import cache_fixtures
from tests.integration.cache_fixtures import Caches, Loader

redis_url = cache_fixtures.redis_url
direct = cache_fixtures.direct
tenant = cache_fixtures.tenant
caches = cache_fixtures.caches


class Table:
    """The row in "PostgreSQL", and a loader that reads it and then stalls until told to go on."""

    def __init__(self, value: bytes) -> None:
        self.value = value
        self.loaded = asyncio.Event()
        self.go_on = asyncio.Event()
        self.calls = 0

    async def slow_load(self) -> bytes:
        self.calls += 1
        value = self.value  # the SELECT happens here...
        self.loaded.set()
        await self.go_on.wait()  # ...and the reader is descheduled before it stores the result
        return value

    async def load(self) -> bytes:
        self.calls += 1
        return self.value


async def _race(reader: Cache, writer: Cache, key: keys.Key, tenant: uuid.UUID, table: Table) -> bytes | None:
    """reader loads old -> writer commits + invalidates -> reader stores; returns what the reader answered."""
    reading = asyncio.create_task(reader.get_or_load(key, table.slow_load))
    await table.loaded.wait()
    table.value = b"\x0anew"  # the writer's transaction commits...
    await writer.invalidate(tenant, [key])  # ...then it invalidates
    table.go_on.set()
    return await reading


async def test_stale_set_is_refused_by_redis(caches: Caches, tenant: uuid.UUID, direct: redis.Redis) -> None:
    # The reader has no local tier, so it hears no pub/sub message: only Redis's generation check protects it.
    key = keys.conversation_by_whatsapp(tenant, "wa-1")
    reader, writer = await caches.make(local_max_entries=0), await caches.make()
    table = Table(b"\x0aold")

    answered = await _race(reader, writer, key, tenant, table)

    assert answered == b"\x0aold"  # its read overlapped the write: either answer is correct for that call
    assert direct.get(key.text) is None, "the old value was put back after the invalidation"
    assert reader.stats.stale_sets_refused == 1
    assert await reader.get_or_load(key, table.load) == b"\x0anew"
    assert await writer.get_or_load(key, table.load) == b"\x0anew"
    assert table.calls == 2  # the refused load, then one load of the new row (stored, so the writer hit Redis)


async def test_stale_set_in_the_writers_process(caches: Caches, tenant: uuid.UUID, direct: redis.Redis) -> None:
    key = keys.customer_by_whatsapp(tenant, "447400123456")
    cache = await caches.make()
    table = Table(b"\x0aold")

    assert await _race(cache, cache, key, tenant, table) == b"\x0aold"

    assert direct.get(key.text) is None and cache.local_entries == 0
    assert await cache.get_or_load(key, table.load) == b"\x0anew"


async def test_stale_set_in_another_process_with_a_local_tier(
    caches: Caches, tenant: uuid.UUID, direct: redis.Redis
) -> None:
    key = keys.outbound_route(tenant, "genesys-1")
    reader, writer = await caches.make(), await caches.make()
    table = Table(b"\x0aold")

    assert await _race(reader, writer, key, tenant, table) == b"\x0aold"

    assert direct.get(key.text) is None and reader.local_entries == 0
    for _ in range(3):
        assert await reader.get_or_load(key, table.load) == b"\x0anew"


async def test_a_read_after_the_write_does_not_join_the_stale_load(caches: Caches, tenant: uuid.UUID) -> None:
    key = keys.conversation(tenant, uuid.uuid4())
    cache = await caches.make()
    table = Table(b"\x0aold")
    early = asyncio.create_task(cache.get_or_load(key, table.slow_load))
    await table.loaded.wait()
    table.value = b"\x0anew"
    await cache.invalidate(tenant, [key])

    late = await cache.get_or_load(key, table.load)  # began after the write returned: must see it

    table.go_on.set()
    assert (await early, late) == (b"\x0aold", b"\x0anew")
    assert await cache.get_or_load(key, table.load) == b"\x0anew"


async def test_warm_up_does_not_restore_an_invalidated_value(
    caches: Caches, tenant: uuid.UUID, direct: redis.Redis
) -> None:
    cache = await caches.make()
    invalidated, cached, fresh = (keys.conversation_by_whatsapp(tenant, f"wa-{i}") for i in range(3))
    assert await cache.get_or_load(cached, Loader(b"\x0acurrent")) == b"\x0acurrent"
    await cache.invalidate(tenant, [invalidated])  # a write landed after the warm-up query read its rows

    async def rows() -> AsyncIterator[WarmItem]:
        for key in (invalidated, cached, fresh):
            yield key, b"\x0afrom-warm-up", 600.0

    report = await cache.warm(rows())

    assert (report.stored, report.skipped, report.stopped) == (1, 2, "exhausted")
    assert direct.get(invalidated.text) is None
    assert direct.get(cached.text) == b"\x0acurrent"
    assert direct.get(fresh.text) == b"\x0afrom-warm-up"
