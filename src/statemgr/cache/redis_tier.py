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
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import redis.asyncio as aredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from statemgr import tasks
from statemgr.cache import cluster, keys
from statemgr.cache.breaker import CircuitBreaker, State
from statemgr.cache.stats import CacheStats

T = TypeVar("T")
Client = aredis.Redis | aredis.RedisCluster
FAILURES: Final = (redis.exceptions.RedisError, OSError, TimeoutError)
_HELD_CONNECTIONS: Final = 4  # at most this many idle read connections kept (two batches are out at most)
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


async def _mget_on(connection: aredis.Connection, names: Sequence[str]) -> Any:
    await connection.send_command("MGET", *names)
    return await connection.read_response()


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
    """Redis operations for the cache; each answers None when Redis is off, failing, or the breaker is open.

    It also says whether Redis may be *read* (`readable`): not after a failure until Redis has answered again and
    `settle_seconds` have passed since, so that another process's invalidations made meanwhile (which it replays
    as soon as Redis answers it) land before this process reads values that may predate them.
    """

    def __init__(
        self,
        url: str,
        timeout: float,
        max_connections: int,
        breaker: CircuitBreaker,
        stats: CacheStats,
        *,
        invalidate_timeout: float | None = None,
        settle_seconds: float = 0.0,
    ):
        self.enabled = bool(url)
        self.breaker = breaker
        self.suspect = False  # a call failed and none succeeded since
        self._readable_from = 0.0  # monotonic time from which reads may go to Redis again
        self._url = url
        self._timeout = timeout
        self._invalidate_timeout = timeout if invalidate_timeout is None else invalidate_timeout
        self._settle = settle_seconds
        self._max_connections = max_connections
        self._stats = stats
        self._client: Client | None = None
        self.topology: asyncio.Task[None] | None = None  # a cluster's first discovery of its nodes, from `open`
        self._held: list[aredis.Connection] = []  # idle connections of the batched reads

    @property
    def readable(self) -> bool:
        """Whether a read may be answered from Redis now (see the class's docstring)."""
        return self._client is not None and not self.suspect and time.monotonic() >= self._readable_from

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
            client, self._client = self._client, None
            held, self._held = self._held, []
            for connection in held:
                with contextlib.suppress(*FAILURES):
                    await connection.disconnect()
            await close_client(client)

    @property
    def raw(self) -> Client | None:
        """The client itself, for tests and diagnostics."""
        return self._client

    async def mget(self, names: Sequence[str]) -> list[bytes | None] | None:
        """The values of `names` in one MGET, or None when Redis cannot answer in time.

        On a connection this tier holds for its reads rather than one checked out of the pool: a checkout (lock,
        liveness check) costs about half as much CPU again as the MGET itself. redis-py closes a connection on any
        error or cancellation mid-command, and the next command opens it again."""
        if self._client is None:
            return None
        self._stats.read_batches += 1
        if isinstance(self._client, aredis.RedisCluster):
            # A batch holds keys of many tenants, so of many slots: one MGET per slot on the slot's node. A key's
            # value and generation share its slot, so each pair is still read in one command.
            return await self._call(self._client.mget_nonatomic, names)
        held = self._held.pop() if self._held else self._client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            return await self._call(_mget_on, held, names)
        finally:
            if self._client is not None and len(self._held) < _HELD_CONNECTIONS:
                self._held.append(held)
            else:
                await held.disconnect()

    async def ping(self) -> bool:
        """A probe that ignores the breaker's open period (background use only): True if Redis answered."""
        if self._client is None:
            return False
        return await self._call(self._client.ping, force=True) is not None

    async def store(self, text: str, generation: bytes | None, value: bytes, ttl_ms: int) -> bool | None:
        """Sets the value if the generation is still `generation`: True stored, False refused, None failed."""
        if self._client is None:
            return None
        stored = await self._call(
            self._set_script, [text, keys.generation(text)], [generation or b"", value, max(1, ttl_ms)]
        )
        return None if stored is None else bool(stored)

    async def invalidate(
        self, texts: Sequence[str], generation_ttl_ms: int, message: bytes, *, force: bool = False
    ) -> bool:
        """Deletes the values, bumps their generations and publishes `message`, atomically. False: not done.

        Waits up to the invalidation timeout (a write's answer waits for it). `force` tries even while the breaker
        is open (the background replay, which is no caller's wait)."""
        if self._client is None:
            return False
        pairs = [k for text in texts for k in (text, keys.generation(text))]
        done = await self._call(
            self._invalidate_script,
            pairs,
            [generation_ttl_ms, keys.CHANNEL, message],
            budget=self._invalidate_timeout,
            force=force,
        )
        return done is not None

    async def warm(self, items: Sequence[tuple[str, bytes, int]]) -> list[int] | None:
        """Stores a batch where untouched (see _SET_IF_UNTOUCHED), in one pipeline; per item 1 stored, 0 skipped."""
        if self._client is None or not self.breaker.allow():
            return None
        try:
            async with asyncio.timeout(_WARM_BATCH_SECONDS):
                result = await self._warm_pipeline(self._client, items)
        except FAILURES as exc:
            self._stats.redis_errors += 1
            self._suspect_after(exc)
            self.breaker.release()
            return None
        except BaseException:
            self.breaker.release()
            raise
        self._succeeded()
        return result

    async def _warm_pipeline(self, client: Client, items: Sequence[tuple[str, bytes, int]]) -> list[int]:
        if isinstance(client, aredis.RedisCluster):  # its pipelines do not load scripts: on every primary, first
            await client.script_load(_SET_IF_UNTOUCHED)
        async with client.pipeline(transaction=False) as pipe:
            for text, value, ttl_ms in items:
                # AsyncScript takes a ClusterPipeline too (it routes each script call by its keys' slot).
                await self._warm_script([text, keys.generation(text)], [value, max(1, ttl_ms)], client=pipe)  # type: ignore[arg-type]
            return [int(r) for r in await pipe.execute()]

    async def _call(
        self, op: Callable[..., Awaitable[T]], *args: Any, budget: float | None = None, force: bool = False
    ) -> T | None:
        if not self.breaker.allow() and not force:
            return None
        try:
            async with asyncio.timeout(self._timeout if budget is None else budget):
                result = await op(*args)
        except FAILURES as exc:
            self._stats.redis_errors += 1
            self.breaker.failure()
            self._suspect_after(exc)
            return None
        except BaseException:
            self.breaker.release()
            raise
        self._succeeded()
        return result

    def _suspect_after(self, exc: BaseException) -> None:
        """A lost connection, or failures enough to open the breaker, may mean Redis was out of other processes'
        reach too; a lone timeout (this process too busy to read the answer in time, say) does not."""
        if not isinstance(exc, TimeoutError) or self.breaker.state is not State.CLOSED:
            self.suspect = True

    def _succeeded(self) -> None:
        if self.suspect:
            self.suspect = False
            self._readable_from = time.monotonic() + self._settle
        self.breaker.success()
