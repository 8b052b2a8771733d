"""``python -m bench.events_latency``: commit-to-subscriber latency and delivery rate of EventService.Subscribe.

A `statemgr serve` process runs on a throwaway database; this process holds the subscribers (gRPC streams) and the
writers, so commit and receipt are timed on one clock. A writer commits a transaction with one outbox event (as a
state change does), notes the time the COMMIT returned, and each subscriber notes when the event arrived.

Two phases:
- latency: writers commit at a steady rate; every subscriber gets every event; p50/p95/p99 of receipt - commit;
- throughput: a burst of events committed as fast as the writers can; deliveries per second until every
  subscriber has every event.

The load generator shares the machine with the server (and PostgreSQL): on a small machine the Python gRPC client
decoding 200 streams is a large part of what is measured. Figures are printed, never judged.
Environment: STATEMGR_BENCH_PG_URL (default postgresql://localhost/postgres, may create databases).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from statemgr.domain.events import Event, EventType
from statemgr.events import outbox
from statemgr.store import migrate
from statemgr.v1 import event_service_pb2, event_service_pb2_grpc, tenant_pb2, tenant_service_pb2
from statemgr.v1 import tenant_service_pb2_grpc as tenant_grpc

ADMIN_URL = os.environ.get("STATEMGR_BENCH_PG_URL", "postgresql://localhost/postgres")
ADMIN_KEY = "bench-admin-" + uuid.uuid4().hex


@dataclasses.dataclass
class Options:
    subscribers: int
    rate: float
    duration: float
    burst: int
    writers: int


class Receipts:
    """When each subscriber received each event, and when each event was committed."""

    def __init__(self) -> None:
        self.committed: dict[str, float] = {}
        self.receipts: list[tuple[str, float]] = []
        self.deliveries = 0
        self.changed = asyncio.Event()

    def received(self, event_id: str) -> None:
        self.receipts.append((event_id, time.perf_counter()))
        self.deliveries += 1
        self.changed.set()

    def latencies_ms(self) -> list[float]:
        """Receipt minus commit, sorted. A receipt can precede the writer's COMMIT returning (slightly negative)."""
        return sorted((at - self.committed[event_id]) * 1000 for event_id, at in self.receipts)


async def main(options: Options) -> None:
    async with _database() as url, _server(url) as target:
        tenant_id, key = await _tenant(target)
        receipts = Receipts()
        async with _subscribers(target, key, options.subscribers, receipts), _writers(url, options.writers) as pool:
            await _latency_phase(pool, tenant_id, receipts, options)
            await _throughput_phase(pool, tenant_id, receipts, options)


async def _latency_phase(pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID, r: Receipts, o: Options) -> None:
    r.receipts.clear()
    count = int(o.rate * o.duration)
    interval = 1.0 / o.rate
    start = time.perf_counter()
    tasks = []
    for n in range(count):
        await asyncio.sleep(max(0.0, start + n * interval - time.perf_counter()))
        tasks.append(asyncio.create_task(_commit(pool, tenant_id, r)))
    await asyncio.gather(*tasks)
    await _all_delivered(r, count * o.subscribers, deliveries_before=0)
    ms = r.latencies_ms()
    print(f"latency: {count} events at {o.rate:.0f}/s to {o.subscribers} subscribers ({len(ms)} deliveries)")
    print(f"  commit -> subscriber  p50 {_pct(ms, 50):.2f} ms  p95 {_pct(ms, 95):.2f} ms  p99 {_pct(ms, 99):.2f} ms")
    print(f"                        mean {statistics.fmean(ms):.2f} ms  max {ms[-1]:.2f} ms")


async def _throughput_phase(pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID, r: Receipts, o: Options) -> None:
    before = r.deliveries
    r.receipts.clear()
    start = time.perf_counter()
    per_writer = o.burst // o.writers
    await asyncio.gather(*(_commit_many(pool, tenant_id, r, per_writer) for _ in range(o.writers)))
    committed = time.perf_counter() - start
    total = per_writer * o.writers * o.subscribers
    await _all_delivered(r, total, before)
    elapsed = time.perf_counter() - start
    ms = r.latencies_ms()
    print(f"throughput: {per_writer * o.writers} events committed in {committed:.2f} s by {o.writers} writers")
    print(f"  {total} deliveries in {elapsed:.2f} s: {total / elapsed:,.0f} events/s delivered to {o.subscribers}")
    print(f"  under this load: p50 {_pct(ms, 50):.1f} ms  p95 {_pct(ms, 95):.1f} ms  p99 {_pct(ms, 99):.1f} ms")


async def _commit(pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID, r: Receipts) -> None:
    event = Event(EventType.CONVERSATION_STATE_CHANGED, conversation_id=uuid.uuid4(), conversation_state="active")
    async with pool.connection() as conn:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
            event_id = await outbox.append(conn, tenant_id, event)
        r.committed[str(event_id)] = time.perf_counter()


async def _commit_many(pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID, r: Receipts, count: int) -> None:
    for _ in range(count):
        await _commit(pool, tenant_id, r)


async def _all_delivered(r: Receipts, expected: int, deliveries_before: int, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while r.deliveries - deliveries_before < expected:
        r.changed.clear()
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            sys.exit(f"only {r.deliveries - deliveries_before} of {expected} deliveries within {timeout} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(r.changed.wait(), remaining)


@contextlib.asynccontextmanager
async def _subscribers(target: str, key: str, count: int, r: Receipts) -> AsyncIterator[None]:
    channel = grpc.aio.insecure_channel(target)
    stub = event_service_pb2_grpc.EventServiceStub(channel)
    metadata = (("authorization", f"Bearer {key}"),)
    live = [asyncio.Event() for _ in range(count)]
    tasks = [asyncio.create_task(_subscribe(stub, metadata, live[n], r)) for n in range(count)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in live)), 60)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await channel.close()


async def _subscribe(stub: Any, metadata: Any, live: asyncio.Event, r: Receipts) -> None:
    request = event_service_pb2.SubscribeRequest(from_now=True)
    async for item in stub.Subscribe(request, metadata=metadata):
        if item.HasField("event"):
            r.received(item.event.id)
        else:
            live.set()


@contextlib.asynccontextmanager
async def _writers(url: str, size: int) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async def as_service_role(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute("SET ROLE statemgr_app")

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=size, max_size=size, open=False, configure=as_service_role, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _database() -> AsyncIterator[str]:
    name = f"statemgr_bench_events_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    try:
        await migrate.up(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.asynccontextmanager
async def _server(url: str) -> AsyncIterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "STATEMGR_DATABASE_URL": url,
        "STATEMGR_LISTEN": f"127.0.0.1:{port}",
        "STATEMGR_ADMIN_KEY": ADMIN_KEY,
        "STATEMGR_REDIS_URL": "",
        "STATEMGR_AMQP_URL": "",
        "STATEMGR_METRICS_LISTEN": "",
        "STATEMGR_LOG_LEVEL": "warning",
        "STATEMGR_SHUTDOWN_GRACE_SECONDS": "1",
        "STATEMGR_SHUTDOWN_DRAIN_SECONDS": "0",
    }
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "statemgr.cli", "serve", env=env)
    target = f"127.0.0.1:{port}"
    try:
        await _wait_serving(target)
        yield target
    finally:
        proc.terminate()
        await proc.wait()


async def _wait_serving(target: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(tuple(target.split(":")), timeout=0.2).close()  # type: ignore[arg-type]
            return
        await asyncio.sleep(0.1)
    sys.exit(f"the server did not start on {target}")


async def _tenant(target: str) -> tuple[uuid.UUID, str]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = tenant_grpc.TenantServiceStub(channel)
        metadata = (("authorization", f"Bearer {ADMIN_KEY}"),)
        tenant = tenant_pb2.Tenant(display_name="bench")
        created = await stub.CreateTenant(tenant_service_pb2.CreateTenantRequest(tenant=tenant), metadata=metadata)
        key_request = tenant_service_pb2.CreateApiKeyRequest(tenant_id=created.tenant.id)
        key = await stub.CreateApiKey(key_request, metadata=metadata)
    return uuid.UUID(created.tenant.id), key.secret


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def _options() -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.events_latency", description=__doc__.split("\n")[0])
    p.add_argument("--subscribers", type=int, default=200)
    p.add_argument("--rate", type=float, default=50.0, help="events per second in the latency phase")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of the latency phase")
    p.add_argument("--burst", type=int, default=2_000, help="events in the throughput phase")
    p.add_argument("--writers", type=int, default=8, help="concurrent writer transactions")
    args = p.parse_args()
    return Options(args.subscribers, args.rate, args.duration, args.burst, args.writers)


if __name__ == "__main__":
    asyncio.run(main(_options()))
