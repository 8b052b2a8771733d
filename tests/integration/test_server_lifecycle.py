"""The real `statemgr serve` process: health, reflection-free stubs, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2

from statemgr.v1 import tenant_pb2, tenant_service_pb2, tenant_service_pb2_grpc
from tests.integration.conftest import ADMIN_KEY
from tests.integration.processes import ServeProcess


@pytest.fixture
async def serve(database_url: str) -> AsyncIterator[ServeProcess]:
    process = ServeProcess(
        {
            "STATEMGR_DATABASE_URL": database_url,
            "STATEMGR_ADMIN_KEY": ADMIN_KEY,
            "STATEMGR_REDIS_URL": "",
            "STATEMGR_AMQP_URL": "",
            "STATEMGR_SHUTDOWN_GRACE_SECONDS": "5",
            "STATEMGR_SHUTDOWN_DRAIN_SECONDS": "1",
        }
    )
    await process.start()
    yield process
    process.kill()


async def test_sigterm_drains_then_lets_in_flight_calls_finish(serve: ServeProcess, database_url: str) -> None:
    metadata = (("authorization", f"Bearer {ADMIN_KEY}"),)
    async with grpc.aio.insecure_channel(serve.target) as channel:
        stub = tenant_service_pb2_grpc.TenantServiceStub(channel)

        async def create(i: int) -> str | grpc.StatusCode:
            request = tenant_service_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name=f"t{i}"))
            try:
                return (await stub.CreateTenant(request, metadata=metadata)).tenant.id
            except grpc.aio.AioRpcError as exc:
                return exc.code()

        calls = [asyncio.create_task(create(i)) for i in range(300)]
        await asyncio.sleep(0.05)
        serve.signal()
        results = await asyncio.gather(*calls)
    assert await serve.wait(10) == 0, serve.stderr()

    created = {r for r in results if isinstance(r, str)}
    refused = [r for r in results if not isinstance(r, str)]
    assert not refused, f"calls sent before SIGTERM were refused during the drain: {refused[:3]}"
    with psycopg.connect(database_url) as conn:
        stored = {str(row[0]) for row in conn.execute("SELECT id FROM tenants").fetchall()}
    assert created == stored, "every call that answered OK is committed, and nothing else"


async def test_health_turns_not_serving_on_sigterm_then_the_process_exits(serve: ServeProcess) -> None:
    assert await serve.health() == health_pb2.HealthCheckResponse.SERVING
    serve.signal()
    await asyncio.sleep(0.3)
    assert await serve.health() == health_pb2.HealthCheckResponse.NOT_SERVING, "load balancers see the drain"
    assert await serve.wait(10) == 0
    assert await serve.health() is None
