"""The floor's gRPC server, run in its own process so it and the load generator each get a core.

It serves the standard health Check with no interceptors (the no-op floor) and four methods that do only the
backend work of a statemgr RPC: a Redis GET, the two-insert transaction, the upsert transaction and the status
update transaction. They take and
return the tiny health messages, so what they cost beyond the no-op is the backend call and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import signal
import uuid
from collections.abc import Iterator

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bench import floordb

SERVICE = "statemgr.bench.v1.Floor"
REDIS_GET = f"/{SERVICE}/RedisGet"
TWO_INSERT = f"/{SERVICE}/TwoInsert"
UPSERT = f"/{SERVICE}/Upsert"
STATUS_UPDATE = f"/{SERVICE}/StatusUpdate"
REDIS_KEY = "statemgr-bench:floor:value"
REDIS_CONNECTIONS = 64
TENANTS = tuple(str(uuid.UUID(int=n + 1)) for n in range(10))  # TENANTS[0] is floordb.TENANT


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the server process connects to."""

    pg: floordb.Target
    pg_pool_size: int
    redis_url: str


def redis_client(url: str) -> aioredis.Redis:
    """A client whose calls wait for one of REDIS_CONNECTIONS connections (the wait counts as latency) rather than
    fail when a stall leaves more calls in flight than the pool holds."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=REDIS_CONNECTIONS, timeout=10)
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it


class _Floor:
    """Handlers of the floor methods: the backend work and nothing else."""

    def __init__(self, settings: Settings) -> None:
        self._pool = floordb.pool(settings.pg, settings.pg_pool_size)
        self._redis = redis_client(settings.redis_url)
        self._prefix = uuid.uuid4().hex[:12]
        self._counter = itertools.count()

    async def open(self) -> None:
        await self._pool.open(wait=True)

    async def close(self) -> None:
        await self._pool.close()
        await self._redis.aclose()

    async def redis_get(
        self, request: health_pb2.HealthCheckRequest, context: object
    ) -> health_pb2.HealthCheckResponse:
        await self._redis.get(REDIS_KEY)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def two_insert(
        self, request: health_pb2.HealthCheckRequest, context: object
    ) -> health_pb2.HealthCheckResponse:
        n = next(self._counter)  # taken before any await: concurrent handlers share this object
        async with self._pool.connection() as conn:
            await floordb.two_insert(conn, TENANTS[n % len(TENANTS)], f"srv-{self._prefix}-{n}")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def upsert(self, request: health_pb2.HealthCheckRequest, context: object) -> health_pb2.HealthCheckResponse:
        n = next(self._counter)
        async with self._pool.connection() as conn:
            await floordb.upsert(conn, TENANTS[0], n)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def status_update(
        self, request: health_pb2.HealthCheckRequest, context: object
    ) -> health_pb2.HealthCheckResponse:
        n = next(self._counter)
        async with self._pool.connection() as conn:
            await floordb.update_status(conn, floordb.TENANT, n)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(fn: object) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )

        methods = {
            "RedisGet": unary(self.redis_get),
            "TwoInsert": unary(self.two_insert),
            "Upsert": unary(self.upsert),
            "StatusUpdate": unary(self.status_update),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)


async def _serve(settings: Settings, ready: multiprocessing.connection.Connection) -> None:
    floor = _Floor(settings)
    await floor.open()
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((floor.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    ready.send(port)
    await stop.wait()
    await server.stop(1.0)
    await floor.close()


def main(settings: Settings, ready: multiprocessing.connection.Connection) -> None:
    """The child process's entry point: serve until SIGTERM (Ctrl-C is the parent's to handle)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="floor server: %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(settings, ready))


def _await_ready(
    parent: multiprocessing.connection.Connection, process: multiprocessing.process.BaseProcess, timeout_s: float
) -> None:
    for _ in range(int(timeout_s * 10)):
        if parent.poll(0.1):
            return
        if not process.is_alive():
            raise RuntimeError(f"the floor server exited with code {process.exitcode} before serving")
    raise RuntimeError("the floor server did not start in time")


@contextlib.contextmanager
def running(settings: Settings, timeout_s: float = 30.0) -> Iterator[tuple[str, int]]:
    """Starts the floor server in a spawned process; yields its address and pid; stops it on exit."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=main, args=(settings, child), name="bench-floor-server", daemon=True)
    process.start()
    try:
        _await_ready(parent, process, timeout_s)
        assert process.pid is not None
        yield f"127.0.0.1:{parent.recv()}", process.pid
    finally:
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
