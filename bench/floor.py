"""The floor: what the same machine does with no statemgr code in the way, measured in the same run.

Every statemgr scenario is compared to one of these. The gRPC floors call a server in another process
(``bench.floor_server``); the raw floors call Redis and PostgreSQL straight from the load generator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import uuid
from collections.abc import AsyncIterator

import grpc
import psycopg
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2

from bench import floor_server, floordb, procfs, report
from bench.loadgen import Call, Case, Plan, Probe, Usage, measure

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
RPC_TIMEOUT_S = 10.0
REDIS_VALUE = b"x" * 300
# Open-loop RPCs per second: the rate of the statemgr scenarios each floor case is the floor of (bench.scenarios).
CACHED_RATE = 1_000.0
CREATE_RATE = 200.0
UPSERT_RATE = 200.0
STATUS_RATE = 500.0
TRACKING_RATE = 500.0


@dataclasses.dataclass(frozen=True)
class Options:
    """Where the floor's backends are and how big its pools are."""

    redis_url: str
    pg_pool_size: int
    health_target: str | None

    @staticmethod
    def from_env(pg_pool_size: int, health_target: str | None) -> Options:
        redis_url = os.environ.get("STATEMGR_BENCH_REDIS_URL", "redis://localhost:6379/0")
        return Options(redis_url=redis_url, pg_pool_size=pg_pool_size, health_target=health_target)


@dataclasses.dataclass
class Environment:
    """Facts about the backends, for the results file."""

    facts: dict[str, str] = dataclasses.field(default_factory=dict)


def _rpc(channel: grpc.aio.Channel, method: str) -> Call:
    stub = channel.unary_unary(
        method,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    request = health_pb2.HealthCheckRequest()

    async def call(i: int) -> None:
        await stub(request, timeout=RPC_TIMEOUT_S)

    return call


def _sequence(*calls: Call) -> Call:
    async def call(i: int) -> None:
        for step in calls:
            await step(i)

    return call


def _raw_redis(client: aioredis.Redis) -> Call:
    async def call(i: int) -> None:
        await client.get(floor_server.REDIS_KEY)

    return call


def _raw_two_insert(pool: floordb.Pool) -> Call:
    prefix = uuid.uuid4().hex[:12]
    counter = itertools.count()

    async def call(i: int) -> None:
        n = next(counter)
        async with pool.connection() as conn:
            await floordb.two_insert(conn, floor_server.TENANTS[n % len(floor_server.TENANTS)], f"raw-{prefix}-{n}")

    return call


def _raw_upsert(pool: floordb.Pool) -> Call:
    async def call(i: int) -> None:
        async with pool.connection() as conn:
            await floordb.upsert(conn, floor_server.TENANTS[0], i)

    return call


def _raw_status_update(pool: floordb.Pool) -> Call:
    counter = itertools.count()

    async def call(i: int) -> None:
        n = next(counter)
        async with pool.connection() as conn:
            await floordb.update_status(conn, floordb.TENANT, n)

    return call


def _cases(
    noop: Call, server: grpc.aio.Channel, client: aioredis.Redis, pool: floordb.Pool, probe: Probe
) -> list[Case]:
    two_insert_rpc = _rpc(server, floor_server.TWO_INSERT)
    upsert_rpc = _rpc(server, floor_server.UPSERT)
    status_rpc = _rpc(server, floor_server.STATUS_UPDATE)
    shapes = (
        ("noop-rpc", None, "gRPC health Check, no interceptors, server in another process", noop, CACHED_RATE),
        ("redis-get", None, "raw redis.asyncio GET of a 300-byte value", _raw_redis(client), CACHED_RATE),
        (
            "redis-get-rpc",
            "noop-rpc",
            "gRPC call whose handler does one Redis GET",
            _rpc(server, floor_server.REDIS_GET),
            CACHED_RATE,
        ),
        (
            "pg-two-insert",
            None,
            "raw transaction: set_config, 2 INSERTs, COMMIT (RLS)",
            _raw_two_insert(pool),
            CREATE_RATE,
        ),
        (
            "pg-upsert",
            None,
            "raw transaction: set_config, INSERT ON CONFLICT DO UPDATE RETURNING",
            _raw_upsert(pool),
            UPSERT_RATE,
        ),
        (
            "pg-status-update",
            None,
            "raw transaction: set_config, UPDATE + history INSERT (one statement), outbox INSERT",
            _raw_status_update(pool),
            STATUS_RATE,
        ),
        (
            "two-insert-rpc",
            "pg-two-insert",
            "gRPC call whose handler runs the two-insert transaction",
            two_insert_rpc,
            CREATE_RATE,
        ),
        ("upsert-rpc", "pg-upsert", "gRPC call whose handler runs the upsert transaction", upsert_rpc, UPSERT_RATE),
        (
            "status-update-rpc",
            "pg-status-update",
            "gRPC call whose handler runs the status update transaction",
            status_rpc,
            STATUS_RATE,
        ),
    )
    cases = [Case(name, base, text, call, rate=rate, probe=probe) for name, base, text, call, rate in shapes]
    tracking = _sequence(two_insert_rpc, status_rpc, status_rpc, status_rpc)
    text = "4 sequential gRPC calls: two-insert then 3 status updates (floor of message tracking)"
    cases.append(Case("write-x4-rpc", None, text, tracking, rpcs=4, rate=TRACKING_RATE, probe=probe))
    return cases


def _probe(conn: psycopg.AsyncConnection[tuple[object, ...]], server_pid: int) -> Probe:
    """CPU time of the floor server and of the floor database's backends (the generator's pool's too)."""

    async def probe() -> Usage:
        backends = await procfs.backend_pids(conn, floordb.DATABASE)
        return Usage(procfs.cpu_seconds([server_pid]), procfs.cpu_seconds(backends))

    return probe


@contextlib.asynccontextmanager
async def prepared(options: Options, env: Environment) -> AsyncIterator[list[Case]]:
    """Creates the bench database, the Redis value and the floor server; yields the cases; removes them all."""
    target, role_created = await floordb.create()
    env.facts.update({f"postgresql {k}": v for k, v in (await floordb.settings(target)).items()})
    env.facts["postgresql role"] = f"{target.role} (non-owner, RLS forced)" if target.role else "owner (RLS forced)"
    try:
        async with contextlib.AsyncExitStack() as stack:
            yield await _enter(stack, options, target, env)
    finally:
        await floordb.drop(target, role_created)


async def _enter(
    stack: contextlib.AsyncExitStack, options: Options, target: floordb.Target, env: Environment
) -> list[Case]:
    client = floor_server.redis_client(options.redis_url)
    stack.push_async_callback(client.aclose)
    await client.set(floor_server.REDIS_KEY, REDIS_VALUE)
    stack.push_async_callback(client.delete, floor_server.REDIS_KEY)
    info = await client.info("server")
    env.facts["redis version"] = str(info.get("redis_version", "?"))
    redis_pid = int(info.get("process_id", 0))
    pool = floordb.pool(target, options.pg_pool_size)
    await pool.open(wait=True)
    stack.push_async_callback(pool.close)
    settings = floor_server.Settings(pg=target, pg_pool_size=options.pg_pool_size, redis_url=options.redis_url)
    address, pid = stack.enter_context(floor_server.running(settings))
    admin = await psycopg.AsyncConnection.connect(target.admin_url, autocommit=True)
    stack.push_async_callback(admin.close)
    server = grpc.aio.insecure_channel(address)
    stack.push_async_callback(server.close)
    noop_channel = server
    if options.health_target:
        noop_channel = grpc.aio.insecure_channel(options.health_target)
        stack.push_async_callback(noop_channel.close)
    env.facts["no-op target"] = options.health_target or f"{address} (bench floor server, no interceptors)"
    cases = _cases(_rpc(noop_channel, HEALTH_CHECK), server, client, pool, _probe(admin, pid))
    if procfs.command(redis_pid).startswith("redis"):  # a local Redis: it is the server of the raw GETs
        cases = [dataclasses.replace(c, probe=_redis_probe(redis_pid)) if c.name == "redis-get" else c for c in cases]
    return cases


def _redis_probe(pid: int) -> Probe:
    async def probe() -> Usage:
        return Usage(procfs.cpu_seconds([pid]))

    return probe


async def measure_into(run: report.Run, case: Case, plan: Plan) -> None:
    """Measures ``case`` and adds its results to ``run``, printing each as it comes."""
    for result in await measure(case, plan):
        report.progress(result)
        run.results.append(result)


class Floors:
    """The floor cases not measured yet.

    Each is measured just before the first scenario compared to it (its own floor first), so the two figures of a
    ratio are taken seconds apart rather than minutes: on a shared machine the load of other work changes between
    them. ``rest`` measures whatever no scenario asked for.
    """

    def __init__(self, cases: list[Case], plan: Plan, run: report.Run) -> None:
        self._pending = {case.name: case for case in cases}
        self._plan = plan
        self._run = run

    async def before(self, name: str | None) -> None:
        """Measures the floor case ``name`` (and its own floor) unless it has been measured or is not here."""
        case = self._pending.pop(name, None) if name else None
        if case is None:
            return
        await self.before(case.floor)
        await measure_into(self._run, case, self._plan)

    async def rest(self) -> None:
        for name in list(self._pending):
            await self.before(name)
