"""Single flight: many concurrent reads of one cold key cost one load per process (at most two when a write lands
in the middle), and a reader that gives up does not take the others' answer with it."""

from __future__ import annotations

import asyncio
import uuid

import redis

from statemgr.cache import keys
from tests.integration import cache_fixtures
from tests.integration.cache_fixtures import Caches, Loader, until

redis_url = cache_fixtures.redis_url
direct = cache_fixtures.direct
tenant = cache_fixtures.tenant
caches = cache_fixtures.caches


async def test_500_concurrent_reads_of_a_cold_key_load_at_most_twice(
    caches: Caches, tenant: uuid.UUID, direct: redis.Redis
) -> None:
    cache = await caches.make()
    key = keys.conversation_by_whatsapp(tenant, "hot")
    load = Loader(b"\x0ahot", delay=0.02)

    answers = await asyncio.gather(*(cache.get_or_load(key, load) for _ in range(500)))

    assert answers == [b"\x0ahot"] * 500
    assert load.calls <= 2
    assert direct.get(key.text) == b"\x0ahot"


async def test_a_write_during_the_load_costs_at_most_one_more(caches: Caches, tenant: uuid.UUID) -> None:
    cache = await caches.make()
    key = keys.customer(tenant, uuid.uuid4())
    load = Loader(b"\x0aold", delay=0.02)
    first = [asyncio.create_task(cache.get_or_load(key, load)) for _ in range(250)]
    await until(lambda: load.calls == 1, "the first load reads the row")
    load.value = b"\x0anew"
    await cache.invalidate(tenant, [key])
    second = [asyncio.create_task(cache.get_or_load(key, load)) for _ in range(250)]

    answers = await asyncio.gather(*first, *second)

    assert load.calls == 2
    assert set(answers[:250]) == {b"\x0aold"} and set(answers[250:]) == {b"\x0anew"}


async def test_a_cancelled_reader_does_not_cancel_the_shared_load(caches: Caches, tenant: uuid.UUID) -> None:
    cache = await caches.make()
    key = keys.outbound_route(tenant, "genesys-9")
    load = Loader(b"\x0aroute", delay=0.05)
    leader = asyncio.create_task(cache.get_or_load(key, load))
    await asyncio.sleep(0.01)
    follower = asyncio.create_task(cache.get_or_load(key, load))
    await asyncio.sleep(0.01)
    leader.cancel()

    assert await follower == b"\x0aroute"
    assert leader.cancelled() and load.calls == 1


async def test_a_failing_load_reaches_every_waiter_and_is_not_cached(caches: Caches, tenant: uuid.UUID) -> None:
    cache = await caches.make()
    key = keys.conversation(tenant, uuid.uuid4())
    calls = 0

    async def broken() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise ConnectionError("database down")

    results = await asyncio.gather(*(cache.get_or_load(key, broken) for _ in range(20)), return_exceptions=True)

    assert calls == 1 and all(isinstance(r, ConnectionError) for r in results)
    assert await cache.get_or_load(key, Loader(b"\x0aback")) == b"\x0aback"
