"""The Cache with Redis off (no I/O): single flight, write-aware coalescing, loader errors, argument checks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from statemgr.cache import NEGATIVE, Cache, WarmItem, keys
from statemgr.cache.options import CacheOptions

TENANT = uuid.uuid4()


@pytest.fixture
async def cache() -> AsyncIterator[Cache]:
    started = Cache(CacheOptions(redis_url=""))
    await started.start()
    yield started
    await started.stop()


class Gate:
    """A loader that reads `value` when called and answers when released."""

    def __init__(self, value: bytes) -> None:
        self.value = value
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> bytes:
        self.calls += 1
        value = self.value
        await self.release.wait()
        return value


async def test_without_redis_every_read_loads_and_concurrent_ones_share(cache: Cache) -> None:
    key = keys.conversation_by_whatsapp(TENANT, "wa")
    gate = Gate(b"\x0aa")
    readers = [asyncio.create_task(cache.get_or_load(key, gate)) for _ in range(100)]
    await asyncio.sleep(0)
    gate.release.set()
    assert set(await asyncio.gather(*readers)) == {b"\x0aa"} and gate.calls == 1
    assert await cache.get_or_load(key, gate) == b"\x0aa" and gate.calls == 2  # nothing is kept
    assert not cache.local_live
    stats = cache.stats.by_kind[keys.Kind.CONVERSATION]
    assert (stats.loads, stats.redis_skipped, stats.local_hits) == (2, 101, 0)  # skipped: counted per read


async def test_invalidation_detaches_the_load_in_progress(cache: Cache) -> None:
    key = keys.customer(TENANT, uuid.uuid4())
    old = Gate(b"\x0aold")
    early = asyncio.create_task(cache.get_or_load(key, old))
    await asyncio.sleep(0)
    await cache.invalidate(TENANT, [key])
    new = Gate(b"\x0anew")
    late = asyncio.create_task(cache.get_or_load(key, new))
    await asyncio.sleep(0)
    old.release.set()
    new.release.set()
    assert (await early, await late) == (b"\x0aold", b"\x0anew")


async def test_a_loader_error_reaches_every_waiter(cache: Cache) -> None:
    async def failing() -> bytes:
        await asyncio.sleep(0.001)
        raise LookupError("boom")

    key = keys.conversation(TENANT, uuid.uuid4())
    results = await asyncio.gather(*(cache.get_or_load(key, failing) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)


async def test_the_reserved_marker_and_foreign_keys_are_refused(cache: Cache) -> None:
    async def marker() -> bytes:
        return NEGATIVE

    with pytest.raises(ValueError, match="reserved"):
        await cache.get_or_load(keys.conversation(TENANT, uuid.uuid4()), marker)
    with pytest.raises(ValueError, match="tenant"):
        await cache.invalidate(TENANT, [keys.conversation(uuid.uuid4(), uuid.uuid4())])
    await cache.invalidate(TENANT, [])


async def test_warm_without_redis_stops_at_once(cache: Cache) -> None:
    pulled = 0

    async def items() -> AsyncIterator[WarmItem]:
        nonlocal pulled
        for i in range(10):
            pulled += 1
            yield keys.conversation(TENANT, uuid.uuid4()), bytes([10, i]), 60.0

    report = await cache.warm(items())
    assert (report.stopped, report.stored, pulled) == ("redis_unavailable", 0, 0)
