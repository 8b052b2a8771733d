"""A failure in the middle of a write leaves nothing behind: the state change and its event commit together or not
at all. The event insert is made to fail (as the database owner) after the conversation rows were written in the
same transaction; the call must answer promptly with a clean status, and the database must show no trace of it."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration.conftest import Client
from tests.integration.errors import expect
from tests.integration.test_conversations import (
    ACTIVE,
    WAITING,
    count_rows,
    create,
    event_types,
    get,
    move,
    owner_query,
)

INTERNAL = grpc.StatusCode.INTERNAL
TABLES = ("conversations", "conversation_genesys_ids", "conversation_assignments", "conversation_state_transitions")


async def counts(database_url: str, tenant: Client) -> dict[str, int]:
    return {table: await count_rows(database_url, table, tenant.tenant_id) for table in (*TABLES, "events")}


async def test_a_failed_event_insert_undoes_the_create(tenant: Client, database_url: str) -> None:
    await owner_query(
        database_url, "ALTER TABLE events ADD CONSTRAINT test_no_created CHECK (type <> 'conversation.created')"
    )
    call = create(tenant, "wa-doomed", genesys_conversation_id="g-doomed", agent_id=str(uuid.uuid4()))
    await expect(asyncio.wait_for(call, timeout=10), INTERNAL)
    assert await counts(database_url, tenant) == dict.fromkeys((*TABLES, "events"), 0)
    lookup = cs.LookupConversationRequest(whatsapp_conversation_id="wa-doomed")
    await expect(tenant.conversations.LookupConversation(lookup), grpc.StatusCode.NOT_FOUND)

    await owner_query(database_url, "ALTER TABLE events DROP CONSTRAINT test_no_created")
    created = await create(tenant, "wa-doomed", genesys_conversation_id="g-doomed")  # the pool recovered, no leftovers
    assert created.state == ACTIVE


async def test_a_failed_event_insert_undoes_the_transition(tenant: Client, database_url: str) -> None:
    conversation = await create(tenant)
    before = await counts(database_url, tenant)
    await owner_query(
        database_url, "ALTER TABLE events ADD CONSTRAINT test_no_moves CHECK (type <> 'conversation.state_changed')"
    )
    await expect(asyncio.wait_for(move(tenant, conversation.id, WAITING), timeout=10), INTERNAL)
    assert await get(tenant, conversation.id) == conversation  # same state, same etag
    assert await counts(database_url, tenant) == before


async def test_a_raising_trigger_undoes_the_transfer(tenant: Client, database_url: str) -> None:
    conversation = await create(tenant)
    before = await counts(database_url, tenant)
    await owner_query(
        database_url,
        """
        CREATE FUNCTION test_refuse_transfers() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.type = 'conversation.transferred' THEN
                RAISE EXCEPTION 'refused by the test';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_refuse_transfers BEFORE INSERT ON events
            FOR EACH ROW EXECUTE FUNCTION test_refuse_transfers();
        """,
    )
    request = cs.TransferConversationRequest(conversation_id=conversation.id, agent_id=str(uuid.uuid4()))
    exc = await expect(asyncio.wait_for(tenant.conversations.TransferConversation(request), timeout=10), INTERNAL)
    assert "refused by the test" not in (exc.details() or "")  # database internals do not leak to callers
    assert await get(tenant, conversation.id) == conversation
    assert await counts(database_url, tenant) == before
    assert await event_types(database_url, tenant.tenant_id, conversation.id) == ["conversation.created"]
