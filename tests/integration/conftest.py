"""Integration fixtures: a migrated template database cloned per test, the server in-process on port 0,
and clients that call it through the generated stubs with a tenant's API key, as a transformer would."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from statemgr import server as server_mod
from statemgr.app import App
from statemgr.config import Settings
from statemgr.store import migrate
from statemgr.v1 import (
    conversation_service_pb2_grpc,
    customer_service_pb2_grpc,
    event_service_pb2_grpc,
    integration_service_pb2_grpc,
    message_service_pb2_grpc,
    tenant_pb2,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)
from tests.integration import services

ADMIN_KEY = "test-admin-key-" + uuid.uuid4().hex


def db_url(name: str) -> str:
    parts = urllib.parse.urlparse(services.PG_ADMIN_URL)
    return urllib.parse.urlunparse(parts._replace(path="/" + name))


def admin_execute(statement: sql.Composable) -> None:
    with psycopg.connect(services.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    return services.require(services.PG_ADMIN_URL, 5432, "PostgreSQL", services.postgres_container)


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """A database with every migration applied, cloned by each test."""
    name = f"statemgr_tpl_{uuid.uuid4().hex[:10]}"
    admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    asyncio.run(migrate.up(db_url(name)))
    yield name
    admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database_url(template_db: str) -> Iterator[str]:
    """A fresh migrated database for one test, dropped afterwards."""
    name = f"statemgr_t_{uuid.uuid4().hex[:12]}"
    admin_execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template_db)))
    yield db_url(name)
    admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for an in-process server; Redis and RabbitMQ off unless a test turns them on."""
    return Settings(
        database_url=database_url,
        admin_key=ADMIN_KEY,
        listen="127.0.0.1:0",
        redis_url="",
        amqp_url="",
        metrics_listen="",
        shutdown_grace_seconds=1.0,
        auth_cache_seconds=1.0,
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[server_mod.Server]:
    started = await server_mod.start(App.build(settings), settings.listen)
    yield started
    await started.stop(grace=0.5)


class _BearerMetadata:
    def __init__(self, key: str) -> None:
        self._metadata = (("authorization", f"Bearer {key}"),)

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return details._replace(metadata=grpc.aio.Metadata(*(details.metadata or ()), *self._metadata))


# grpc.aio files an interceptor under the first call kind it implements, so each kind needs its own class.
class _BearerUnary(_BearerMetadata, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _BearerStream(_BearerMetadata, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


@dataclasses.dataclass
class Client:
    """Stubs of every service on one channel that sends one key (empty: no authorization at all)."""

    channel: grpc.aio.Channel
    tenant_id: str = ""
    api_key: str = ""

    def __post_init__(self) -> None:
        self.tenants = tenant_service_pb2_grpc.TenantServiceStub(self.channel)
        self.conversations = conversation_service_pb2_grpc.ConversationServiceStub(self.channel)
        self.customers = customer_service_pb2_grpc.CustomerServiceStub(self.channel)
        self.messages = message_service_pb2_grpc.MessageServiceStub(self.channel)
        self.integration = integration_service_pb2_grpc.IntegrationServiceStub(self.channel)
        self.events = event_service_pb2_grpc.EventServiceStub(self.channel)


class Clients:
    """Opens clients against one server and closes them at the end of the test."""

    def __init__(self, port: int) -> None:
        self.target = f"127.0.0.1:{port}"
        self._channels: list[grpc.aio.Channel] = []

    def with_key(self, key: str, tenant_id: str = "") -> Client:
        interceptors = [_BearerUnary(key), _BearerStream(key)] if key else []
        channel = grpc.aio.insecure_channel(self.target, interceptors=interceptors)
        self._channels.append(channel)
        return Client(channel, tenant_id, key)

    def admin(self) -> Client:
        return self.with_key(ADMIN_KEY)

    async def new_tenant(self, name: str = "Tenant", region: str = "GB") -> Client:
        """Creates a tenant and an API key through TenantService; returns a client acting for it."""
        admin = self.admin()
        tenant = (
            await admin.tenants.CreateTenant(
                tenant_service_pb2.CreateTenantRequest(
                    tenant=tenant_pb2.Tenant(display_name=name, default_region=region)
                )
            )
        ).tenant
        key = await admin.tenants.CreateApiKey(tenant_service_pb2.CreateApiKeyRequest(tenant_id=tenant.id))
        return self.with_key(key.secret, tenant.id)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


@pytest.fixture
async def clients(server: server_mod.Server) -> AsyncIterator[Clients]:
    opened = Clients(server.port)
    yield opened
    await opened.close()


@pytest.fixture
async def tenant(clients: Clients) -> Client:
    return await clients.new_tenant("Tenant A")


@pytest.fixture
async def relay_conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection as the relay's role (statemgr_relay), like the leader's: to prune or mark events."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        await conn.execute("SET ROLE statemgr_relay")
        yield conn


@pytest.fixture
def app_conn(database_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A plain connection running as the service's role (statemgr_app), as the server's pool does."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET ROLE statemgr_app")
        yield conn


def code_of(exc: grpc.aio.AioRpcError) -> grpc.StatusCode:
    return exc.code()


@pytest.fixture(scope="module")
def moto() -> Iterator[Any]:
    """moto's S3 server (tests.integration.lifecycle_fixtures.MotoServer) for a module's tests of the archive store."""
    from tests.integration.lifecycle_fixtures import MotoServer  # pyarrow: only the modules that use it pay for it

    server = MotoServer().start()
    yield server
    server.close()
