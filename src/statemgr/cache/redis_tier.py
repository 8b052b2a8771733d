"""The shared tier: Redis, reached through a breaker and a hard time budget per call, with versioned writes.

Stale-set protection. Each value key has a generation key that every invalidation increments (and deletes the
value), in one Lua script. A reader fetches value and generation together (one MGET); on a miss it loads from
PostgreSQL and stores with a script that sets the value only if the generation is still the one it read. So a
reader that loaded the old row before a write committed cannot put it back after the write's invalidation: the
generation moved and the set is refused. Generation keys expire (`generation_ttl`); a load that takes longer than
half of that is not stored at all, so an expired-and-recreated generation cannot be mistaken for the one read.

Fail-open. Every call runs under `asyncio.timeout(redis_timeout)` with redis-py's own retries off (its retries
would multiply the wait), and through the circuit breaker; any failure answers "unavailable" (None), never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import redis.asyncio as aredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from statemgr import tasks
from statemgr.cache import cluster, keys
from statemgr.cache.breaker import CircuitBreaker
from statemgr.cache.stats import CacheStats

T = TypeVar("T")
Client = aredis.Redis | aredis.RedisCluster
FAILURES: Final = (redis.exceptions.RedisError, OSError, TimeoutError)
_WARM_BATCH_SECONDS: Final = 2.0  # a warm-up pipeline is not on any caller's path; the warm-up has its own deadline

# KEYS[1] value, KEYS[2] its generation; ARGV[1] the generation the reader saw ('' for none), ARGV[2] value,
# ARGV[3] TTL in ms. Lua sees a missing key as false.
_SET_IF_CURRENT = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: value, generation, value, generation, ...; ARGV[1] generation TTL in ms, ARGV[2] channel, ARGV[3] message.
_INVALIDATE = """
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return 1
"""

# Warm-up: set only where nothing is cached and nothing was invalidated lately (the row may predate the write).
_SET_IF_UNTOUCHED = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
return 0
"""


def client(url: str, max_connections: int, **options: Any) -> Client:
    """A client without retries and without CLIENT SETINFO on connect: one attempt, one round trip. A
    `redis+cluster://` URL gives a Redis Cluster client (statemgr.cache.cluster)."""
    if cluster.is_cluster(url):
        return cluster.client(url, max_connections, driver_info=None, **options)
    pool = aredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=None, retry=Retry(NoBackoff(), 0), driver_info=None, **options
    )
    return aredis.Redis(connection_pool=pool)


async def close_client(client: Client) -> None:
    """Closes the client and its pool, giving up after a second (a hung server must not hold up shutdown)."""
    with contextlib.suppress(*FAILURES):
        async with asyncio.timeout(1.0):
            await client.aclose()
            if isinstance(client, aredis.Redis):
                await client.connection_pool.aclose()


async def _discover(client: aredis.RedisCluster) -> None:
    """Learns the cluster's slots and nodes; on failure the first commands try again (failing open meanwhile)."""
    with contextlib.suppress(*FAILURES):
        async with asyncio.timeout(_WARM_BATCH_SECONDS):
            await client.initialize()


class RedisTier:
    """Redis operations for the cache; each answers None when Redis is off, failing, or the breaker is open."""

    def __init__(self, url: str, timeout: float, max_connections: int, breaker: CircuitBreaker, stats: CacheStats):
        self.enabled = bool(url)
        self.breaker = breaker
        self._url = url
        self._timeout = timeout
        self._max_connections = max_connections
        self._stats = stats
        self._client: Client | None = None
        self.topology: asyncio.Task[None] | None = None  # a cluster's first discovery of its nodes, from `open`

    def open(self) -> None:
        """Creates the client (no I/O: connections are made on first use)."""
        if self.enabled:
            self._client = client(self._url, self._max_connections)
            self._set_script = self._client.register_script(_SET_IF_CURRENT)
            self._invalidate_script = self._client.register_script(_INVALIDATE)
            self._warm_script = self._client.register_script(_SET_IF_UNTOUCHED)
            if isinstance(self._client, aredis.RedisCluster):  # not within the first calls' time budget
                self.topology = asyncio.create_task(_discover(self._client), name="statemgr-cache-cluster-topology")

    async def close(self) -> None:
        await tasks.cancel_and_wait(self.topology)
        self.topology = None
        if self._client is not None:
            await close_client(self._client)
            self._client = None

    @property
    def raw(self) -> Client | None:
        """The client itself, for tests and diagnostics."""
        return self._client

    async def fetch(self, text: str) -> list[bytes | None] | None:
        """[value, generation] of one key, or None when Redis cannot answer in time."""
        if self._client is None:
            return None
        result = await self._call(self._client.mget, text, keys.generation(text))
        return result  # type: ignore[return-value]  # bytes, not str: the client does not decode responses

    async def store(self, text: str, generation: bytes | None, value: bytes, ttl_ms: int) -> bool | None:
        """Sets the value if the generation is still `generation`: True stored, False refused, None failed."""
        if self._client is None:
            return None
        stored = await self._call(
            self._set_script, [text, keys.generation(text)], [generation or b"", value, max(1, ttl_ms)]
        )
        return None if stored is None else bool(stored)

    async def invalidate(self, texts: Sequence[str], generation_ttl_ms: int, message: bytes) -> bool:
        """Deletes the values, bumps their generations and publishes `message`, atomically. False: not done."""
        if self._client is None:
            return False
        pairs = [k for text in texts for k in (text, keys.generation(text))]
        done = await self._call(self._invalidate_script, pairs, [generation_ttl_ms, keys.CHANNEL, message])
        return done is not None

    async def warm(self, items: Sequence[tuple[str, bytes, int]]) -> list[int] | None:
        """Stores a batch where untouched (see _SET_IF_UNTOUCHED), in one pipeline; per item 1 stored, 0 skipped."""
        if self._client is None or not self.breaker.allow():
            return None
        try:
            async with asyncio.timeout(_WARM_BATCH_SECONDS):
                result = await self._warm_pipeline(self._client, items)
        except FAILURES:
            self._stats.redis_errors += 1
            self.breaker.release()
            return None
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.success()
        return result

    async def _warm_pipeline(self, client: Client, items: Sequence[tuple[str, bytes, int]]) -> list[int]:
        if isinstance(client, aredis.RedisCluster):  # its pipelines do not load scripts: on every primary, first
            await client.script_load(_SET_IF_UNTOUCHED)
        async with client.pipeline(transaction=False) as pipe:
            for text, value, ttl_ms in items:
                # AsyncScript takes a ClusterPipeline too (it routes each script call by its keys' slot).
                await self._warm_script([text, keys.generation(text)], [value, max(1, ttl_ms)], client=pipe)  # type: ignore[arg-type]
            return [int(r) for r in await pipe.execute()]

    async def _call(self, op: Callable[..., Awaitable[T]], *args: Any) -> T | None:
        if not self.breaker.allow():
            return None
        try:
            async with asyncio.timeout(self._timeout):
                result = await op(*args)
        except FAILURES:
            self._stats.redis_errors += 1
            self.breaker.failure()
            return None
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.success()
        return result
