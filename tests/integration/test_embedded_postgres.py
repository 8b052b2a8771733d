"""Nothing installed: with no PostgreSQL at the default URL (and STATEMGR_DATABASE_URL unset), `statemgr migrate up`
and `statemgr serve` start an embedded PostgreSQL (pgserver) and serve a conversation end to end."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import pytest

from statemgr.v1 import (
    conversation_pb2,
    integration_service_pb2,
    integration_service_pb2_grpc,
    tenant_pb2,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)
from tests.integration.conftest import ADMIN_KEY
from tests.integration.processes import ServeProcess, free_port


@pytest.fixture
def nothing_installed(tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    """An environment whose default database URL reaches nothing (PGPORT: a free port), with no URL set."""
    pgdata = tmp_path / "pgdata"
    env = {key: value for key, value in os.environ.items() if key != "STATEMGR_DATABASE_URL"}
    env.update(
        PGPORT=str(free_port()),
        STATEMGR_EMBEDDED_PGDATA=str(pgdata),
        STATEMGR_ADMIN_KEY=ADMIN_KEY,
        STATEMGR_REDIS_URL="",
        STATEMGR_AMQP_URL="",
    )
    yield env
    _stop_leftover_postgres(pgdata)


def _stop_leftover_postgres(pgdata: pathlib.Path) -> None:
    """The server stops with the last process using it; if a test failed half-way, stop the one it started."""
    pid_file = pgdata / "postmaster.pid"
    deadline = time.monotonic() + 10
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_file.exists():
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)


async def test_a_server_with_no_postgresql_at_its_url_serves_a_conversation(
    nothing_installed: dict[str, str],
) -> None:
    migrate = subprocess.run(
        [sys.executable, "-m", "statemgr.cli", "migrate", "up"],
        env=nothing_installed,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "created the database" in migrate.stdout
    assert migrate.stderr.count("embedded_postgres_started") == 1, migrate.stderr

    serve = ServeProcess({key: value for key, value in nothing_installed.items() if key.startswith(("PG", "STATEMGR"))})
    serve.env = {**nothing_installed, "STATEMGR_LISTEN": serve.env["STATEMGR_LISTEN"], "STATEMGR_METRICS_LISTEN": ""}
    try:
        await serve.start(timeout=60)
        assert "embedded_postgres_started" in serve.stderr()
        async with grpc.aio.insecure_channel(serve.target) as channel:
            admin = (("authorization", f"Bearer {ADMIN_KEY}"),)
            tenants = tenant_service_pb2_grpc.TenantServiceStub(channel)
            tenant = await tenants.CreateTenant(
                tenant_service_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="Local")), metadata=admin
            )
            key = await tenants.CreateApiKey(
                tenant_service_pb2.CreateApiKeyRequest(tenant_id=tenant.tenant.id), metadata=admin
            )
            resolved = await integration_service_pb2_grpc.IntegrationServiceStub(channel).ResolveInbound(
                integration_service_pb2.ResolveInboundRequest(
                    whatsapp_id="447400123456", whatsapp_message_id="wamid.local-1", content="hello"
                ),
                metadata=(("authorization", f"Bearer {key.secret}"),),
            )
        assert resolved.conversation_created and resolved.message_created
        assert resolved.conversation.state == conversation_pb2.CONVERSATION_STATE_ACTIVE
    finally:
        if serve.proc is not None and serve.proc.poll() is None:
            serve.signal()
            await serve.wait(30)
        serve.kill()
    assert not (pathlib.Path(nothing_installed["STATEMGR_EMBEDDED_PGDATA"]) / "postmaster.pid").exists(), (
        "the embedded PostgreSQL stops with the server"
    )
