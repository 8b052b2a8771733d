"""The service behind PgBouncer in transaction pooling mode, with more clients than server connections.

The server's pool (STATEMGR_DATABASE_URL) goes through a PgBouncer of this module's own, which holds at most
SERVER_CONNECTIONS connections to the database while the pool opens up to CLIENT_CONNECTIONS; LISTEN and the
leader's advisory lock use STATEMGR_DATABASE_DIRECT_URL. Prepared statements are on only if the installed PgBouncer
handles them (1.21+, max_prepared_statements).

The isolation and write-path suites run here again unchanged (imported below, renamed `test_pgbouncer_*`), and the
tests of this module check what transaction pooling could break: no tenant or role setting is ever left on a
server connection, tenants' concurrent calls never see each other's rows, and Subscribe still wakes at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from statemgr import server as server_mod
from statemgr.config import Settings
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import message_service_pb2 as ms
from tests.integration import pgbouncer as bouncer
from tests.integration import (
    reruns,
    test_conversations,
    test_isolation,
    test_isolation_customers_messages,
    test_messages,
)
from tests.integration.conftest import Client, Clients
from tests.integration.test_conversations import create
from tests.integration.test_events_helpers import Collector, append, request
from tests.integration.test_messages import DELIVERED, record, report, status, wamid

SERVER_CONNECTIONS = 2
CLIENT_CONNECTIONS = 8
# It takes the very connection that served a tenant out of the server's pool by backend pid, which PgBouncer hides;
# test_tenant_and_role_never_stay_on_a_server_connection checks the same at PgBouncer's end.
_NOT_HERE = {"test_a_pooled_connection_that_served_a_tenant_then_sees_nothing"}


reruns.rerun(globals(), "pgbouncer", [test_isolation, test_isolation_customers_messages, test_messages], _NOT_HERE)
test_pgbouncer_fifty_concurrent_creates_for_one_whatsapp_id_make_one_conversation = (
    test_conversations.test_fifty_concurrent_creates_for_one_whatsapp_id_make_one_conversation
)
test_pgbouncer_concurrent_writes_to_one_conversation_lose_cleanly = (
    test_conversations.test_concurrent_writes_to_one_conversation_lose_cleanly
)

SyncConn = psycopg.Connection[tuple[Any, ...]]
AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def pgbouncer(pg_admin_url: str) -> Iterator[bouncer.PgBouncer]:
    bouncer.require()
    started = bouncer.PgBouncer(pg_admin_url, pool_size=SERVER_CONNECTIONS)
    started.start()
    yield started
    started.stop()


def _database(url: str) -> str:
    return urllib.parse.urlparse(url).path.lstrip("/")


@pytest.fixture
def settings(settings: Settings, pgbouncer: bouncer.PgBouncer, database_url: str) -> Settings:
    return dataclasses.replace(
        settings,
        database_url=pgbouncer.url(_database(database_url)),
        database_direct_url=database_url,
        db_pool_min=1,
        db_pool_max=CLIENT_CONNECTIONS,
        db_prepared_statements=bouncer.handles_prepared_statements(),
        event_poll_seconds=30.0,  # so only LISTEN (on the direct URL) can deliver an event within a second
    )


async def _session_state(conn: AsyncConn) -> tuple[str, str]:
    """The tenant and role settings of whichever server connection PgBouncer lends for this one statement."""
    row = await (
        await conn.execute("SELECT coalesce(current_setting('app.tenant_id', true), ''), current_setting('role')")
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


async def _watch(url: str, stop: asyncio.Event) -> list[tuple[str, str]]:
    """Samples the session state of PgBouncer's server connections while the service runs, until `stop`."""
    seen = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None) as conn:
        while not stop.is_set():
            seen.append(await _session_state(conn))
            await asyncio.sleep(0.002)
    return seen


async def _tenant_workload(client: Client, rounds: int) -> set[str]:
    """Creates conversations, records messages and reports statuses; returns the conversation ids created."""
    created = set()
    for _ in range(rounds):
        conversation = await create(client)
        created.add(conversation.id)
        wa = wamid()
        await record(client, conversation.id, whatsapp_message_id=wa)
        await status(client, report(DELIVERED, 1.0, key=wa))
    return created


async def test_tenant_and_role_never_stay_on_a_server_connection(
    clients: Clients, server: server_mod.Server, pgbouncer: bouncer.PgBouncer, database_url: str
) -> None:
    tenants = [await clients.new_tenant(f"T{i}") for i in range(6)]
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(server.app.settings.database_url, stop))
    try:
        workloads = [_tenant_workload(client, 6) for client in tenants for _ in range(2)]
        created = await asyncio.gather(*workloads)
        opened = server.app.db.pool.get_stats()["pool_size"]
        servers = len(pgbouncer.server_pids(_database(database_url)))
    finally:
        stop.set()
        seen = await watcher
    assert opened > SERVER_CONNECTIONS >= servers > 0  # more clients than server connections: they were shared
    assert len(seen) > 20 and set(seen) == {("", "none")}
    for index, client in enumerate(tenants):
        mine = created[2 * index] | created[2 * index + 1]
        listed = await client.conversations.ListConversations(cs.ListConversationsRequest(page_size=100))
        assert {c.id for c in listed.conversations} == mine


async def test_a_session_setting_would_be_seen_by_the_watch(
    server: server_mod.Server, pgbouncer: bouncer.PgBouncer
) -> None:
    """The check above can fail: a session-level SET through PgBouncer stays on its server connection."""
    url = server.app.settings.database_url
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None) as leaker:
        await leaker.execute("SELECT set_config('app.tenant_id', %s, false)", (str(uuid.uuid4()),))
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None) as watcher:
            states = {await _session_state(watcher) for _ in range(20)}
        await leaker.execute("RESET app.tenant_id")
    assert any(tenant for tenant, _ in states)


async def test_many_tenants_at_once_each_see_only_their_own(clients: Clients, server: server_mod.Server) -> None:
    tenants = [await clients.new_tenant(f"T{i}") for i in range(8)]
    created = await asyncio.gather(*(_tenant_workload(client, 3) for client in tenants))
    for client, mine in zip(tenants, created, strict=True):
        for conversation_id in mine:
            got = await client.conversations.GetConversation(cs.GetConversationRequest(conversation_id=conversation_id))
            assert got.conversation.id == conversation_id
        listed = await client.messages.ListMessages(ms.ListMessagesRequest(conversation_id=next(iter(mine))))
        assert len(listed.messages) == 1


async def test_subscribe_is_woken_through_listen_on_the_direct_url(server: server_mod.Server, tenant: Client) -> None:
    stream = await Collector(tenant, request(from_now=True)).started()
    sent = time.monotonic()
    event_id = await append(server.app, uuid.UUID(tenant.tenant_id), uuid.uuid4())
    await stream.wait_for(1, timeout=10)
    await stream.stop()
    assert stream.ids == [event_id]
    assert stream.received_at[event_id] - sent < 10.0  # polling is every 30 s here: this came through LISTEN


async def test_the_leader_holds_its_lock_on_the_direct_url(
    server: server_mod.Server, pgbouncer: bouncer.PgBouncer, app_conn: SyncConn, database_url: str
) -> None:
    assert server.app.background is not None
    await asyncio.wait_for(server.app.background.leadership.leading.wait(), 10)
    holders = app_conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database ="
        " (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchall()
    assert len(holders) == 1 and holders[0][0] not in pgbouncer.server_pids(_database(database_url))
