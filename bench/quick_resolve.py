"""Quick latency check of ResolveInbound and UpdateMessageStatus: sequential calls against an in-process server.

    python -m bench.quick_resolve [--calls 500]

Creates a throwaway database (migrated), starts the server in this process on a free port with Redis and RabbitMQ
off, creates a tenant and a key, then measures one call at a time through the generated stubs. It prints
p50/p95/mean per call kind; it does not pass or fail. PostgreSQL comes from STATEMGR_BENCH_PG_URL (an admin URL,
default postgresql://localhost/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
import psycopg
from psycopg import sql

from statemgr import logs, server
from statemgr.app import App
from statemgr.config import Settings
from statemgr.store import migrate
from statemgr.v1 import (
    integration_service_pb2,
    integration_service_pb2_grpc,
    message_pb2,
    message_service_pb2,
    message_service_pb2_grpc,
    tenant_pb2,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)

ADMIN_URL = os.environ.get("STATEMGR_BENCH_PG_URL", "postgresql://localhost/postgres")
ADMIN_KEY = "bench-admin-" + uuid.uuid4().hex
STATUSES = (message_pb2.MESSAGE_STATUS_DELIVERED, message_pb2.MESSAGE_STATUS_READ)


@asynccontextmanager
async def database() -> AsyncIterator[str]:
    """A migrated throwaway database, dropped at the end."""
    name = f"statemgr_bench_quick_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urllib.parse.urlunparse(urllib.parse.urlparse(ADMIN_URL)._replace(path="/" + name))
    try:
        await migrate.up(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def tenant_key(channel: grpc.aio.Channel) -> str:
    admin = tenant_service_pb2_grpc.TenantServiceStub(channel)
    metadata = (("authorization", f"Bearer {ADMIN_KEY}"),)
    request = tenant_service_pb2.CreateTenantRequest(
        tenant=tenant_pb2.Tenant(display_name="bench", default_region="GB")
    )
    tenant = (await admin.CreateTenant(request, metadata=metadata)).tenant
    key = await admin.CreateApiKey(tenant_service_pb2.CreateApiKeyRequest(tenant_id=tenant.id), metadata=metadata)
    return key.secret


Timed = tuple[list[float], float]  # milliseconds per call; CPU milliseconds per call of this process


async def timed(calls: int, call: Callable[[int], Awaitable[object]], warmup: int = 20) -> Timed:
    """Milliseconds of `calls` sequential calls call(i), after `warmup` unmeasured ones, and the CPU time per call
    of this process (server and client together)."""
    samples = []
    for i in range(warmup + calls):
        if i == warmup:
            cpu = time.process_time()
        start = time.perf_counter()
        await call(i)
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000)
    return samples, (time.process_time() - cpu) * 1000 / calls


def summary(name: str, timing: Timed) -> str:
    samples, cpu = timing
    cuts, mean = statistics.quantiles(samples, n=100), statistics.fmean(samples)
    return (
        f"{name:<44} n={len(samples):<5} p50={cuts[49]:6.2f} ms  p95={cuts[94]:6.2f} ms  mean={mean:6.2f} ms"
        f"  cpu={cpu:5.2f} ms/call"
    )


async def measure(channel: grpc.aio.Channel, calls: int) -> list[str]:
    metadata = (("authorization", f"Bearer {await tenant_key(channel)}"),)
    integration = integration_service_pb2_grpc.IntegrationServiceStub(channel)
    messages = message_service_pb2_grpc.MessageServiceStub(channel)
    run = uuid.uuid4().hex[:6]

    def inbound(whatsapp_id: str, message_id: str) -> Awaitable[object]:
        request = integration_service_pb2.ResolveInboundRequest(
            whatsapp_id=whatsapp_id, whatsapp_message_id=message_id, customer_name="Bench Customer", content="hello"
        )
        return integration.ResolveInbound(request, metadata=metadata)

    first = await timed(calls, lambda i: inbound(f"4474{i:08d}", f"wamid.{run}.first.{i}"))
    follow = await timed(calls, lambda i: inbound("447400123456", f"wamid.{run}.follow.{i}"))

    def report(i: int) -> Awaitable[object]:  # delivered, then read, for each follow-up message: every call a change
        request = message_service_pb2.UpdateMessageStatusRequest(
            whatsapp_message_id=f"wamid.{run}.follow.{i // 2}", status=STATUSES[i % 2]
        )
        return messages.UpdateMessageStatus(request, metadata=metadata)

    statuses = await timed(calls, report)
    return [
        summary("ResolveInbound, new customer (first message)", first),
        summary("ResolveInbound, known customer, open conv.", follow),
        summary("UpdateMessageStatus (delivered/read)", statuses),
    ]


async def main(calls: int) -> None:
    logs.configure("warning")
    async with database() as url:
        settings = Settings(
            database_url=url, admin_key=ADMIN_KEY, listen="127.0.0.1:0", redis_url="", amqp_url="", metrics_listen=""
        )
        started = await server.start(App.build(settings), settings.listen)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{started.port}") as channel:
                for line in await measure(channel, calls):
                    print(line)
        finally:
            await started.stop(grace=0.5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    asyncio.run(main(parser.parse_args().calls))
