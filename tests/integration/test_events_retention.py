"""Retention of the event log, OUT_OF_RANGE, the horizon, lost notifications, the relay role, streaming off."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import grpc
import psycopg
import pytest

from statemgr import server as server_mod
from statemgr.app import App
from statemgr.config import Settings
from statemgr.events.pruner import Pruner
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.test_events_helpers import (
    Collector,
    append,
    deliverable,
    request,
    subscribe,
    write_conversation,
)

RETENTION = 1


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Events older than a second may be pruned; the tests prune when they choose (the pruner's own pass is rare)."""
    return dataclasses.replace(
        settings,
        event_retention_seconds=RETENTION,
        event_prune_interval_seconds=3600,
        event_heartbeat_seconds=0.3,
        event_poll_seconds=1.0,
    )


async def test_a_pruned_cursor_is_out_of_range_and_a_kept_one_resumes(
    server: server_mod.Server, tenant: Client, relay_conn: psycopg.AsyncConnection[Any]
) -> None:
    tenant_id, room = uuid.UUID(tenant.tenant_id), uuid.uuid4()
    old = await write_conversation(server.app, tenant_id, room, 3)
    cursors = await _cursors(tenant, 3)
    await asyncio.sleep(RETENTION + 0.2)
    new = await write_conversation(server.app, tenant_id, room, 2)
    assert await Pruner(3600, RETENTION, require_published=False).prune(relay_conn) == 3
    error = await Collector(tenant, request(after=cursors[0])).start().wait_error()
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    resumed = Collector(tenant, request(after=cursors[2])).start()  # the last pruned event: nothing after it lost
    assert [e.id for e in await resumed.wait_for(2)] == new
    await resumed.stop()
    from_start = Collector(tenant, request()).start()  # no cursor: from the oldest event kept
    assert [e.id for e in await from_start.wait_for(2)] == new
    await from_start.stop()
    assert old[0] not in {e.id for e in from_start.events}


async def test_with_a_relay_only_published_events_are_pruned(
    server: server_mod.Server, tenant: Client, relay_conn: psycopg.AsyncConnection[Any], database_url: str
) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    ids = await write_conversation(server.app, tenant_id, uuid.uuid4(), 4)
    await asyncio.sleep(RETENTION + 0.2)
    pruner = Pruner(3600, RETENTION, require_published=True)
    assert await pruner.prune(relay_conn) == 0  # old, but RabbitMQ never took them
    with psycopg.connect(database_url, autocommit=True) as admin:  # the first two published long ago
        admin.execute("UPDATE events SET published_at = now() - interval '1 hour' WHERE id = ANY(%s)", (ids[:2],))
        admin.execute("UPDATE events SET published_at = now() WHERE id = %s", (ids[3],))
    assert await pruner.prune(relay_conn) == 2  # a prefix: ids[2] is unpublished, so ids[3] stays too
    with psycopg.connect(database_url, autocommit=True) as admin:
        left = [row[0] for row in admin.execute("SELECT id::text FROM events ORDER BY seq").fetchall()]
    assert left == ids[2:]


async def test_the_tenants_shorter_retention_applies(
    server: server_mod.Server, clients: Clients, relay_conn: psycopg.AsyncConnection[Any]
) -> None:
    tenant = await clients.new_tenant()
    tenant_id = uuid.UUID(tenant.tenant_id)
    await write_conversation(server.app, tenant_id, uuid.uuid4(), 2)
    await asyncio.sleep(RETENTION + 0.2)
    assert await Pruner(3600, 3600 * 24, require_published=False).prune(relay_conn) == 0  # tenant: 7 days
    async with server.app.db.tenant(tenant_id) as conn:
        await conn.execute("UPDATE tenants SET event_retention = interval '1 second'")
    assert await Pruner(3600, 3600 * 24, require_published=False).prune(relay_conn) == 2


async def test_an_event_waits_for_an_older_open_transaction(
    server: server_mod.Server, tenant: Client, database_url: str
) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    stream = await Collector(tenant, request(from_now=True)).started()
    async with await psycopg.AsyncConnection.connect(database_url) as other:
        await other.execute("SELECT pg_current_xact_id()")  # an unrelated transaction with an id, left open
        event_id = await append(server.app, tenant_id, uuid.uuid4())
        await asyncio.sleep(1.0)
        assert stream.events == []  # a transaction older than the event's may still commit events before it
        await other.commit()
    assert [e.id for e in await stream.wait_for(1, timeout=3)] == [event_id]
    await stream.stop()


async def test_polling_delivers_within_two_seconds_when_notifications_are_lost(
    server: server_mod.Server, tenant: Client, database_url: str
) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    stream = await Collector(tenant, request(from_now=True)).started()
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("ALTER TABLE events DISABLE TRIGGER events_notify")
    event_id = await append(server.app, tenant_id, uuid.uuid4())
    await deliverable(database_url, event_id)  # a long transaction elsewhere in the cluster delays it; not timed
    assert [e.id for e in await stream.wait_for(1, timeout=2.0)] == [event_id]
    await stream.stop()


async def test_the_relay_role_is_confined(database_url: str, app_conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute("UPDATE events SET published_at = now()")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET ROLE statemgr_relay")
        row = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row == (False, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE events SET payload = '{}'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM conversations")


async def test_streaming_switched_off_is_unavailable(settings: Settings, clients: Clients) -> None:
    tenant = await clients.new_tenant()
    off = await server_mod.start(App.build(dataclasses.replace(settings, streaming_enabled=False)), "127.0.0.1:0")
    other = Clients(off.port)
    try:
        client = other.with_key(tenant.api_key, tenant.tenant_id)
        error = await expect(_first(client), grpc.StatusCode.UNAVAILABLE)
        assert "STATEMGR_STREAMING_ENABLED" in (error.details() or "")
    finally:
        await other.close()
        await off.stop(grace=0.5)


async def _cursors(tenant: Client, count: int) -> list[str]:
    stream = Collector(tenant, request()).start()
    events = await stream.wait_for(count)
    await stream.stop()
    return [e.cursor for e in events]


async def _first(client: Client) -> object:
    async for item in subscribe(client, request()):
        return item
    return None
