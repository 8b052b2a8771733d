"""Batched reads against the real Redis: the reads of one loop turn share one MGET, a read after another's answer
is a batch of its own (sent after it began), a batch is never empty, and a read that begins after a write's
invalidation, in another process, sees it although a batch of the old value may still be out."""

from __future__ import annotations

import asyncio
import uuid

from statemgr.cache import keys
from tests.integration import cache_fixtures
from tests.integration.cache_fixtures import Caches, Loader

redis_url = cache_fixtures.redis_url
direct = cache_fixtures.direct
tenant = cache_fixtures.tenant
caches = cache_fixtures.caches


async def test_concurrent_reads_share_one_mget_and_sequential_ones_do_not(caches: Caches, tenant: uuid.UUID) -> None:
    cache = await caches.make(local_max_entries=0)
    names = [keys.conversation(tenant, uuid.uuid4()) for _ in range(64)]
    for key in names:
        await cache.get_or_load(key, Loader(b"\x0a" + key.text.encode()))
    before = cache.stats.read_batches

    answers = await asyncio.gather(*(cache.get_or_load(key, Loader(b"\x0aunused")) for key in names))

    assert answers == [b"\x0a" + key.text.encode() for key in names]
    assert cache.stats.read_batches - before <= 2  # one; two if the first was sent before all had joined
    before = cache.stats.read_batches
    for key in names[:10]:
        await cache.get_or_load(key, Loader(b"\x0aunused"))
    assert cache.stats.read_batches - before == 10
    assert cache.stats.redis_errors == 0  # no empty MGET ("wrong number of arguments") among them
    assert cache.stats.by_kind[keys.Kind.CONVERSATION].redis_hits == 64 + 10


async def test_a_read_after_the_invalidation_never_rides_an_earlier_batch(caches: Caches, tenant: uuid.UUID) -> None:
    reader, writer = await caches.make(local_max_entries=0), await caches.make(local_max_entries=0)
    key = keys.customer(tenant, uuid.uuid4())
    assert await reader.get_or_load(key, Loader(b"\x0aold")) == b"\x0aold"
    for round_ in range(50):
        # Reads keep batches (and loads) out all the time; each write's invalidation returns, then a read begins.
        busy = [asyncio.create_task(reader.get_or_load(key, Loader(f"\x0abusy-{round_}".encode()))) for _ in range(20)]
        await asyncio.sleep(0)
        await writer.invalidate(tenant, [key])
        after = await reader.get_or_load(key, Loader(f"\x0anew-{round_}".encode()))
        # Loaded after the write: by this read, or by a busy read whose batch was sent after the invalidation.
        # Anything of an earlier round (or "old") would be the state before the write.
        fresh = {f"\x0anew-{round_}".encode(), f"\x0abusy-{round_}".encode()}
        assert after in fresh, f"round {round_}: a read after the write answered {after!r}"
        await asyncio.gather(*busy)
