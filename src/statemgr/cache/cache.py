"""The read-through cache the servicers use: an in-process tier, then Redis, then the caller's loader.

    value = await cache.get_or_load(keys.conversation_by_whatsapp(tenant_id, wa_id), load)   # bytes | None
    await cache.invalidate(tenant_id, keys.conversation_keys(tenant_id, conv_id, wa_id, [genesys_id]))

Values are bytes (serialized protobuf; the caller serializes). A loader answers None for "not found"; that answer
is cached too, for `negative_ttl` seconds, so writes that create an entity must invalidate its keys as well.
Redis is an accelerator: when it is off, slow or down, every call still answers from the loader, after at most
`redis_timeout` of waiting. docs/caching.md explains the design; the modules beside this one each hold one part.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Iterable
from typing import Any, Final, TypeVar

import structlog

from statemgr import tasks
from statemgr.cache import invalidation, keys, warm
from statemgr.cache.breaker import CircuitBreaker
from statemgr.cache.keys import Key
from statemgr.cache.local import MISS, LocalTier
from statemgr.cache.options import CacheOptions
from statemgr.cache.pending import PendingInvalidations
from statemgr.cache.reads import Fetched, ReadBatcher
from statemgr.cache.redis_tier import RedisTier
from statemgr.cache.singleflight import Flight, SingleFlight
from statemgr.cache.stats import CacheStats
from statemgr.cache.warm import WarmItem, WarmReport
from statemgr.config import Settings

log = structlog.get_logger("statemgr.cache")

T = TypeVar("T")
Loader = Callable[[], Awaitable[bytes | None]]

NEGATIVE: Final = b"\x00"
"""How Redis holds a cached "not found". No serialized protobuf message starts with a 0 byte (field 0 is invalid),
so no real value can be mistaken for it; a loader that returns exactly this is refused."""

_INVALIDATE_CHUNK = 500  # keys per Lua call: keeps each script short on the Redis server
_RECOVER_INTERVAL = 0.05
# After a Redis failure, reads wait this long after Redis answers again: long enough for the other processes'
# recovery loops (every _RECOVER_INTERVAL) to replay what they could not invalidate meanwhile.
_SETTLE_SECONDS = 0.25


class Cache:
    """One per server process; built without I/O, `start`ed and `stop`ped by the App."""

    def __init__(self, options: CacheOptions) -> None:
        self.options = options
        self.stats = CacheStats()
        self.origin = uuid.uuid4().hex
        self.breaker = CircuitBreaker(options.breaker_failures, options.breaker_open_seconds)
        self.redis = RedisTier(
            options.redis_url,
            options.redis_timeout,
            options.redis_max_connections,
            self.breaker,
            self.stats,
            invalidate_timeout=options.invalidate_timeout,
            settle_seconds=_SETTLE_SECONDS,
        )
        self._reads = ReadBatcher(self.redis)
        self._watching: dict[str, int] = {}  # keys being read from Redis (in-process tier on), and by how many
        self._spoiled: set[str] = set()  # of those, the ones invalidated meanwhile: their answers are not kept
        self._replay_soon = asyncio.Event()
        self._local = LocalTier(options.local_max_entries, options.local_ttl)
        self._local_negative_ttl = min(options.local_ttl, options.negative_ttl)
        self._flights = SingleFlight()
        self._pending = PendingInvalidations(options.pending_invalidations_max)
        self._ttl = dict(options.ttl)
        self._local_live = False  # the local tier is consulted only while invalidations can reach this process
        self._subscriber: invalidation.Subscriber | None = None
        if self.redis.enabled and options.local_max_entries > 0:
            self._subscriber = invalidation.Subscriber(
                options.redis_url, self.origin, options.pubsub_ping_seconds, self._forget, self._on_pubsub_live
            )
        self._tasks: set[asyncio.Task[Any]] = set()  # background work, cancelled at stop
        self._invalidating: set[asyncio.Task[None]] = set()  # awaited at stop: a write's invalidation must land

    @classmethod
    def build(cls, settings: Settings) -> Cache:
        return cls(CacheOptions.from_settings(settings))

    async def start(self) -> None:
        """Starts the pub/sub listener and the replay of deferred invalidations. Never fails: Redis may be down."""
        self.redis.open()
        if self._subscriber is not None:
            self._subscriber.start()
        if self.redis.enabled:
            self._spawn(self._recover())

    async def stop(self) -> None:
        if self._invalidating:
            await asyncio.wait(self._invalidating, timeout=1.0)
        await tasks.cancel_and_wait_all([*self._tasks, *self._invalidating])
        if self._subscriber is not None:
            await self._subscriber.stop()
        await self._flights.cancel_all()
        await self._reads.close()
        await self.redis.close()
        if self._pending:
            log.warning("cache_invalidations_abandoned", keys=len(self._pending))

    # -- reads ----------------------------------------------------------------------------------------------------

    async def get_or_load(self, key: Key, loader: Loader, *, ttl: float | None = None) -> bytes | None:
        """The cached value of `key`, else `await loader()` (bytes, or None for "not found"), stored for later.

        `ttl` (seconds) overrides the kind's TTL for a value just loaded. Concurrent misses of one key in this
        process share one load when that cannot return a row older than a write finished before the read began.
        Exceptions from the loader reach every caller waiting on it; nothing is stored.
        """
        stats = self.stats.by_kind[key.kind]
        if self._local_live:
            value = self._local.get(key.text)
            if value is not MISS:
                stats.local_hits += 1
                return value  # type: ignore[return-value]  # MISS excluded just above
            stats.local_misses += 1
        fetched = await self._fetch(key.text) if self._redis_readable() else None
        generation: bytes | None = None
        if fetched is None:
            stats.redis_skipped += 1
        elif fetched[0] is not None:
            stats.redis_hits += 1
            return None if fetched[0] == NEGATIVE else fetched[0]
        else:
            stats.redis_misses += 1
            generation = fetched[1]
        task = self._flights.joinable(key.text, generation)
        if task is None:
            task = self._flights.start(
                key.text, generation, lambda flight: self._fill(flight, key, loader, ttl, generation)
            )
        return await asyncio.shield(task)

    async def _fetch(self, text: str) -> Fetched | None:
        """Redis's answer for `text`; with the in-process tier on, kept there unless `text` was invalidated here
        (locally or over pub/sub) while Redis answered."""
        if not self._local_live:
            return await self._reads.fetch(text)
        watching = self._watching
        watching[text] = watching.get(text, 0) + 1
        try:
            fetched = await self._reads.fetch(text)
        finally:
            left = watching.pop(text) - 1
            if left:
                watching[text] = left
                spoiled = text in self._spoiled
            else:
                spoiled = text in self._spoiled
                self._spoiled.discard(text)
        if fetched is not None and fetched[0] is not None and not spoiled:
            self._keep_locally(text, None if fetched[0] == NEGATIVE else fetched[0])
        return fetched

    def _redis_readable(self) -> bool:
        """Whether to read Redis now: not when it is off or recovering from a failure (`RedisTier.readable`), nor
        while this process has invalidations Redis has not taken (a value there may predate a write it answered)."""
        if self._pending:
            self._replay_soon.set()
            return False
        return self.redis.readable

    async def _fill(
        self, flight: Flight, key: Key, loader: Loader, ttl: float | None, generation: bytes | None
    ) -> bytes | None:
        try:
            return await self._load(flight, key, loader, ttl, generation)
        finally:
            self._flights.finish(key.text, flight)

    async def _load(
        self, flight: Flight, key: Key, loader: Loader, ttl: float | None, generation: bytes | None
    ) -> bytes | None:
        started = time.monotonic()
        flight.begun = True
        value = await loader()
        self.stats.by_kind[key.kind].loads += 1
        if value == NEGATIVE:
            raise ValueError("a cache loader returned the reserved 'not found' marker b'\\x00'")
        if generation is not None and not flight.stale:
            await self._store(flight, key, generation, value, ttl, started)
        if not flight.stale:
            self._keep_locally(key.text, value)
        return value

    async def _store(
        self, flight: Flight, key: Key, generation: bytes, value: bytes | None, ttl: float | None, since: float
    ) -> None:
        if time.monotonic() - since > self.options.max_load_seconds:
            flight.stale = True  # the generation read may have expired and been recreated meanwhile
            return
        if value is None:
            if self.options.negative_ttl <= 0:
                return
            payload, lifetime = NEGATIVE, self.options.negative_ttl
        else:
            payload, lifetime = value, self._ttl[key.kind] if ttl is None else ttl
        stored = await self.redis.store(key.text, generation, payload, self.options.jittered_ms(lifetime))
        if stored is False:  # invalidated since our read: what we loaded may predate the write
            self.stats.stale_sets_refused += 1
            flight.stale = True

    def _keep_locally(self, text: str, value: bytes | None) -> None:
        if not self._local_live:
            return
        if value is not None:
            self._local.put(text, value)
        elif self._local_negative_ttl > 0:
            self._local.put(text, None, self._local_negative_ttl)

    # -- writes ---------------------------------------------------------------------------------------------------

    async def invalidate(self, tenant_id: uuid.UUID, keys_: Iterable[Key]) -> None:
        """Forgets `keys_` (all of `tenant_id`) here, in Redis and in every other process. Call after the commit.

        Waits at most the Redis timeout; if Redis cannot take it now, the invalidation is kept and replayed when
        Redis is back. Never raises for Redis trouble, and a cancelled caller (a cancelled RPC) does not stop it.
        """
        prefix = keys.tenant_prefix(tenant_id)
        texts = [key.text for key in keys_]
        if not texts:
            return
        if not all(text.startswith(prefix) for text in texts):
            raise ValueError("invalidate: every key must belong to the tenant named")
        self.stats.invalidations += len(texts)
        self._forget(texts)
        if self.redis.enabled:
            task = asyncio.create_task(self._invalidate_everywhere(prefix, texts))
            self._invalidating.add(task)
            task.add_done_callback(self._invalidating.discard)
            await asyncio.shield(task)

    async def _invalidate_everywhere(self, prefix: str, texts: list[str]) -> None:
        for start in range(0, len(texts), _INVALIDATE_CHUNK):
            if not await self._invalidate_in_redis(texts[start : start + _INVALIDATE_CHUNK]):
                self._defer(prefix, texts[start:])
                break
        self._forget(texts)  # again: a reader here may have refilled the local tier from Redis meanwhile

    async def _invalidate_in_redis(self, texts: list[str], *, force: bool = False) -> bool:
        message = invalidation.encode(self.origin, texts)
        return await self.redis.invalidate(texts, int(self.options.generation_ttl * 1000), message, force=force)

    def _forget(self, texts: list[str]) -> None:
        """Drops `texts` from the local tier and detaches their loads in progress (called for others' messages too)."""
        self._local.delete(texts)
        if self._watching:
            self._spoiled.update(text for text in texts if text in self._watching)
        self._flights.forget(texts)

    def _defer(self, prefix: str, texts: list[str]) -> None:
        dropped = self._pending.add(prefix, texts)
        if dropped:
            self.stats.invalidations_dropped += dropped
            log.error("cache_invalidations_dropped", keys=dropped, pending=len(self._pending))

    async def _recover(self) -> None:
        """Replays deferred invalidations, and probes a Redis that failed, every `_RECOVER_INTERVAL` (sooner when a
        read finds invalidations pending), whatever the breaker says: no caller waits on it, and until the replay
        has gone through, this process reads nothing from Redis (`_fetch`)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RECOVER_INTERVAL):
                    await self._replay_soon.wait()
            self._replay_soon.clear()
            if self._pending:
                await self._replay_once()
            elif self.redis.suspect:
                await self.redis.ping()

    async def _replay_once(self) -> None:
        batches = self._pending.snapshot()
        for prefix, texts in batches:
            for start in range(0, len(texts), _INVALIDATE_CHUNK):
                chunk = texts[start : start + _INVALIDATE_CHUNK]
                if not await self._invalidate_in_redis(chunk, force=True):
                    await asyncio.sleep(_RECOVER_INTERVAL)  # Redis still away: do not spin on reads' wake-ups
                    return
                self._pending.done(prefix, chunk)
                self._forget(chunk)
        log.info("cache_invalidations_replayed", tenants=len(batches))

    # -- the pub/sub link -----------------------------------------------------------------------------------------

    def _on_pubsub_live(self, live: bool) -> None:
        # Both edges flush: going down, nothing would tell us about writes; coming back, we may have missed some.
        self._spoiled.update(self._watching)
        self._local_live = live
        self._local.flush()
        self._flights.forget_all()
        self.stats.local_flushes += 1
        log.info("cache_local_tier", live=live)

    # -- warm-up --------------------------------------------------------------------------------------------------

    def start_warming(self, items: AsyncIterable[WarmItem]) -> asyncio.Task[WarmReport]:
        """Runs `warm(items)` in the background (readiness never waits for it); stopped with the cache."""
        return self._spawn(self.warm(items))

    async def warm(self, items: AsyncIterable[WarmItem]) -> WarmReport:
        """Stores `items` in Redis where nothing is cached and nothing was invalidated lately (see warm.py).

        Bounded: at most `warm_max_items` items and `warm_max_seconds` seconds; stops at the first Redis failure.
        Never raises (a failing source is logged and ends the warm-up).
        """
        report = await warm.run(self.redis, self.options, items)
        self.stats.warmed += report.stored
        return report

    # -- state, for metrics and tests -----------------------------------------------------------------------------

    @property
    def local_live(self) -> bool:
        """Whether the in-process tier is in use (pub/sub subscribed and answering)."""
        return self._local_live

    @property
    def local_entries(self) -> int:
        return len(self._local)

    @property
    def pending_invalidations(self) -> int:
        return len(self._pending)

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
