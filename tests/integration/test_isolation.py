"""Tenant isolation: through the API (another tenant's ids are NOT_FOUND, like ids that never existed) and in the
database, as the service's role (row-level security: a query that forgets the tenant sees nothing).

The last test replaces one policy with USING (true) and shows the same checks then do see the other tenant's
rows: the isolation assertions can fail.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import psycopg
from psycopg import sql

from statemgr import server as server_mod
from statemgr.v1 import conversation_pb2 as pb
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.test_conversations import CLOSED, create, get, move, struct, update, wa_id

NOT_FOUND = grpc.StatusCode.NOT_FOUND
TENANT_TABLES = (
    "conversations",
    "conversation_state_transitions",
    "conversation_assignments",
    "conversation_genesys_ids",
    "events",
)
SyncConn = psycopg.Connection[tuple[Any, ...]]
SESSION_STATE = (
    "SELECT coalesce(current_setting('app.tenant_id', true), '') AS tenant,"
    " current_setting('role') AS role, current_user AS user"
)


def count(conn: SyncConn, table: str, tenant_id: str | None = None) -> int:
    """Rows of `table` the service role sees, in a transaction for `tenant_id` (None: no tenant set at all)."""
    with conn.transaction():
        if tenant_id is not None:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])


def foreign_rows(conn: SyncConn, table: str, tenant_id: str) -> int:
    """Rows of another tenant visible inside `tenant_id`'s transaction."""
    query = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id <> %s").format(sql.Identifier(table))
    with conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        row = conn.execute(query, (tenant_id,)).fetchone()
    assert row is not None
    return int(row[0])


async def two_tenants_with_history(clients: Clients) -> tuple[Client, Client, pb.Conversation]:
    """Tenant A with a conversation that has a row in every conversation table; tenant B with one of its own."""
    a, b = await clients.new_tenant("A"), await clients.new_tenant("B")
    conversation = await create(a, genesys_conversation_id="g-a", agent_id=str(uuid.uuid4()))
    conversation = await move(a, conversation.id, CLOSED)
    await create(b)
    return a, b, conversation


async def test_another_tenants_conversation_is_not_found_like_a_missing_one(clients: Clients) -> None:
    a, b, theirs = await two_tenants_with_history(clients)
    missing = str(uuid.uuid4())
    for conversation_id in (theirs.id, missing):
        exc = await expect(
            b.conversations.GetConversation(cs.GetConversationRequest(conversation_id=conversation_id)), NOT_FOUND
        )
        assert exc.details() == f"conversation {conversation_id} not found"
        await expect(move(b, conversation_id, CLOSED), NOT_FOUND)
        await expect(update(b, pb.Conversation(id=conversation_id, metadata=struct(x=1)), "metadata"), NOT_FOUND)
        transfer = cs.TransferConversationRequest(conversation_id=conversation_id, agent_id=str(uuid.uuid4()))
        await expect(b.conversations.TransferConversation(transfer), NOT_FOUND)
        close = cs.CloseConversationRequest(conversation_id=conversation_id)
        await expect(b.conversations.CloseConversation(close), NOT_FOUND)
        history = cs.GetConversationHistoryRequest(conversation_id=conversation_id)
        await expect(b.conversations.GetConversationHistory(history), NOT_FOUND)
    for lookup in (
        cs.LookupConversationRequest(whatsapp_conversation_id=theirs.whatsapp_conversation_id),
        cs.LookupConversationRequest(genesys_conversation_id="g-a"),
    ):
        await expect(b.conversations.LookupConversation(lookup), NOT_FOUND)
    assert await get(a, theirs.id) == theirs


async def test_lists_and_searches_hold_only_the_callers_conversations(clients: Clients) -> None:
    a, b, theirs = await two_tenants_with_history(clients)
    listed = (await b.conversations.ListConversations(cs.ListConversationsRequest())).conversations
    assert len(listed) == 1 and theirs.id not in {c.id for c in listed}
    for criteria in (
        {"whatsapp_conversation_id": theirs.whatsapp_conversation_id},
        {"genesys_conversation_id": "g-a"},
    ):
        found = await b.conversations.SearchConversations(cs.SearchConversationsRequest(**criteria))
        assert not found.conversations
        assert [
            c.id
            for c in (
                await a.conversations.SearchConversations(cs.SearchConversationsRequest(**criteria))
            ).conversations
        ] == [theirs.id]


async def test_one_whatsapp_id_in_two_tenants_is_two_conversations(clients: Clients) -> None:
    a, b = await clients.new_tenant("A"), await clients.new_tenant("B")
    whatsapp_id = wa_id()
    in_a, in_b = await create(a, whatsapp_id), await create(b, whatsapp_id)
    assert in_a.id != in_b.id
    for client, expected in ((a, in_a), (b, in_b)):
        lookup = cs.LookupConversationRequest(whatsapp_conversation_id=whatsapp_id)
        assert (await client.conversations.LookupConversation(lookup)).conversation == expected


async def test_the_service_role_without_a_tenant_sees_nothing(clients: Clients, app_conn: SyncConn) -> None:
    a, b, _ = await two_tenants_with_history(clients)
    for table in TENANT_TABLES:
        assert count(app_conn, table) == 0, table
        assert count(app_conn, table, a.tenant_id) > 0, table  # the rows exist: the zero above means something
        assert foreign_rows(app_conn, table, b.tenant_id) == 0, table


async def test_a_pooled_connection_that_served_a_tenant_then_sees_nothing(
    clients: Clients, server: server_mod.Server
) -> None:
    a, _, _ = await two_tenants_with_history(clients)
    db, pool = server.app.db, server.app.db.pool
    async with db.tenant(uuid.UUID(a.tenant_id)) as conn:
        pid = conn.info.backend_pid
        assert (await (await conn.execute("SELECT count(*) AS n FROM conversations")).fetchone() or {})["n"] == 1
    held = []
    try:
        while True:  # take connections from the pool until we hold the very one that just served tenant A
            held.append(await pool.getconn(timeout=5))
            if held[-1].info.backend_pid == pid:
                break
        conn = held[-1]
        # Neither the tenant nor the role outlives its transaction (so PgBouncer's transaction mode is safe) ...
        left = await (await conn.execute(SESSION_STATE)).fetchone()
        assert left == {"tenant": "", "role": "none", "user": conn.info.user}
        # ... and a transaction as the service role but with no tenant sees nothing.
        async with conn.transaction():
            await conn.execute("SELECT set_config('role', 'statemgr_app', true)")
            for table in TENANT_TABLES:
                query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))
                assert (await (await conn.execute(query)).fetchone() or {})["n"] == 0, table
    finally:
        for conn in held:
            await pool.putconn(conn)


async def test_a_policy_of_using_true_is_caught_by_these_checks(
    clients: Clients, app_conn: SyncConn, database_url: str
) -> None:
    """Sabotage one policy on this test's own database: the isolation checks above must then see tenant A's rows."""
    _, b, _ = await two_tenants_with_history(clients)
    assert count(app_conn, "conversations") == 0 and foreign_rows(app_conn, "conversations", b.tenant_id) == 0
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute("DROP POLICY tenant_isolation ON conversations")
        owner.execute("CREATE POLICY tenant_isolation ON conversations USING (true)")
    assert count(app_conn, "conversations") == 2
    assert foreign_rows(app_conn, "conversations", b.tenant_id) == 1
    assert count(app_conn, "conversation_assignments") == 0  # the other tables' policies still hold
