"""What the contract promises a client where it used to mislead (issue 8, defect 7): etags never issued, the
default start of Subscribe, heartbeat cursors of filtered streams, recovering from OUT_OF_RANGE without a full
replay, what Event.create_time holds, and one phone-number rule for UpsertCustomer and ResolveInbound."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2

from statemgr import server as server_mod
from statemgr.config import Settings
from statemgr.events.pruner import Pruner
from statemgr.v1 import conversation_pb2, customer_pb2, event_pb2
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import integration_service_pb2 as ins
from tests.integration.conftest import Client
from tests.integration.errors import error_info, expect
from tests.integration.test_events_helpers import Collector, deliverable, request, write_conversation

ABORTED, BAD, NOT_FOUND = grpc.StatusCode.ABORTED, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
NEVER_ISSUED = ['W/"abc"', "v1", "0", "-1", "99999999999999999999", "etag"]
RETENTION = 1


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        event_retention_seconds=RETENTION,
        event_prune_interval_seconds=3600,
        event_heartbeat_seconds=0.2,
        event_poll_seconds=0.2,
    )


async def create(client: Client, wa: str = "") -> conversation_pb2.Conversation:
    conversation = conversation_pb2.Conversation(whatsapp_conversation_id=wa or f"wa-{uuid.uuid4()}")
    return (
        await client.conversations.CreateConversation(cs.CreateConversationRequest(conversation=conversation))
    ).conversation


@pytest.mark.parametrize("etag", NEVER_ISSUED)
async def test_an_etag_the_server_never_issued_is_aborted_like_a_stale_one(tenant: Client, etag: str) -> None:
    conversation = await create(tenant)
    update = cs.UpdateConversationRequest(
        conversation=conversation_pb2.Conversation(id=conversation.id, genesys_conversation_id="g-1", etag=etag),
        update_mask=field_mask_pb2.FieldMask(paths=["genesys_conversation_id"]),
    )
    await expect(tenant.conversations.UpdateConversation(update), ABORTED)
    move = cs.TransitionConversationRequest(
        conversation_id=conversation.id, state=conversation_pb2.CONVERSATION_STATE_WAITING, etag=etag
    )
    await expect(tenant.conversations.TransitionConversation(move), ABORTED)
    customer = (
        await tenant.customers.UpsertCustomer(
            cus.UpsertCustomerRequest(customer=customer_pb2.Customer(whatsapp_id="447400123456"))
        )
    ).customer
    rename = cus.UpdateCustomerRequest(
        customer=customer_pb2.Customer(id=customer.id, name="x", etag=etag),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]),
    )
    await expect(tenant.customers.UpdateCustomer(rename), ABORTED)
    unchanged = await tenant.conversations.GetConversation(cs.GetConversationRequest(conversation_id=conversation.id))
    assert unchanged.conversation.etag == conversation.etag  # nothing written
    # an unknown id is still NOT_FOUND, whatever the etag
    update.conversation.id = str(uuid.uuid4())
    await expect(tenant.conversations.UpdateConversation(update), NOT_FOUND)


async def test_subscribe_with_no_start_replays_the_retained_log_before_going_live(
    server: server_mod.Server, tenant: Client
) -> None:
    earlier = await write_conversation(server.app, uuid.UUID(tenant.tenant_id), uuid.uuid4(), 3)
    for event_id in earlier:
        await deliverable(server.app.settings.database_url, event_id)
    stream = await Collector(tenant, request()).started(timeout=60)
    assert stream.ids == earlier  # all of them, replayed before the first heartbeat
    await stream.stop()
    live = await Collector(tenant, request(from_now=True)).started(timeout=60)
    await asyncio.sleep(0.5)
    assert live.ids == []
    await live.stop()


async def test_a_heartbeat_cursor_of_a_filtered_stream_is_complete_only_for_that_filter(
    server: server_mod.Server, tenant: Client
) -> None:
    tenant_id, room, other_room = uuid.UUID(tenant.tenant_id), uuid.uuid4(), uuid.uuid4()
    stream = await Collector(tenant, request(rooms=[room])).started(timeout=60)
    elsewhere = await write_conversation(server.app, tenant_id, other_room, 2)
    await deliverable(server.app.settings.database_url, elsewhere[-1])
    beats = len(stream.heartbeats)
    while len(stream.heartbeats) < beats + 3:  # the feed has read past them: the cursor moves on
        await asyncio.sleep(0.1)
    cursor = stream.cursor
    await stream.stop()
    assert stream.ids == []
    same = await Collector(tenant, request(after=cursor, rooms=[room])).started(timeout=60)
    wider = await Collector(tenant, request(after=cursor)).started(timeout=60)
    here = await write_conversation(server.app, tenant_id, room, 1)
    assert [e.id for e in await same.wait_for(1, timeout=60)] == here
    assert [
        e.id for e in await wider.wait_for(1, timeout=60)
    ] == here  # the other room's earlier events are not replayed
    await asyncio.sleep(0.5)
    assert not set(elsewhere) & set(wider.ids)
    await same.stop()
    await wider.stop()


async def test_out_of_range_gives_a_cursor_to_resync_and_follow_from(
    server: server_mod.Server, tenant: Client, relay_conn: psycopg.AsyncConnection[Any]
) -> None:
    tenant_id, room = uuid.UUID(tenant.tenant_id), uuid.uuid4()
    await write_conversation(server.app, tenant_id, room, 2)
    first = Collector(tenant, request()).start()
    stale = (await first.wait_for(2, timeout=60))[0].cursor
    await first.stop()
    await asyncio.sleep(RETENTION + 0.2)
    kept = await write_conversation(server.app, tenant_id, room, 1)
    assert await Pruner(3600, RETENTION, require_published=False).prune(relay_conn) == 2
    await deliverable(
        server.app.settings.database_url, kept[0]
    )  # else the resync cursor may precede it ("may see again events just before")
    error = await Collector(tenant, request(after=stale)).start().wait_error(timeout=60)
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    info = error_info(error)
    assert info is not None and info.metadata["resync_cursor"], error.details()
    assert "resync_cursor" in (error.details() or "")
    after_error = await write_conversation(server.app, tenant_id, room, 2)
    # the portal reloads its state here (kept[0] is in it), then follows from the error's moment
    resumed = await Collector(tenant, request(after=info.metadata["resync_cursor"])).started(timeout=60)
    assert [e.id for e in await resumed.wait_for(2, timeout=60)] == after_error
    assert kept[0] not in resumed.ids
    await resumed.stop()


async def test_event_create_time_is_the_time_of_the_change(tenant: Client) -> None:
    conversation = await create(tenant)
    await tenant.conversations.TransitionConversation(
        cs.TransitionConversationRequest(
            conversation_id=conversation.id, state=conversation_pb2.CONVERSATION_STATE_WAITING, reason="queued"
        )
    )
    stream = Collector(tenant, request()).start()
    created, changed = await stream.wait_for(2, timeout=60)
    await stream.stop()
    assert created.type == event_pb2.EVENT_TYPE_CONVERSATION_CREATED and created.conversation_id == conversation.id
    assert created.create_time == conversation.create_time  # the same instant as the resource's own timestamp
    assert changed.type == event_pb2.EVENT_TYPE_CONVERSATION_STATE_CHANGED
    assert created.create_time.ToDatetime() < changed.create_time.ToDatetime()


async def upsert(client: Client, whatsapp_id: str, phone: str = "") -> customer_pb2.Customer:
    customer = customer_pb2.Customer(whatsapp_id=whatsapp_id, phone_number=phone)
    return (await client.customers.UpsertCustomer(cus.UpsertCustomerRequest(customer=customer))).customer


async def resolve(client: Client, whatsapp_id: str, phone: str = "") -> customer_pb2.Customer:
    inbound = ins.ResolveInboundRequest(
        whatsapp_id=whatsapp_id, phone_number=phone, whatsapp_message_id=f"w-{uuid.uuid4()}", content="hi"
    )
    return (await client.integration.ResolveInbound(inbound)).context.customer


@pytest.mark.parametrize(
    ("whatsapp_id", "stored"),
    [("447400123456", "+447400123456"), ("4474001", ""), ("999123456789", "")],
)
async def test_upsert_and_resolve_inbound_derive_the_phone_number_alike(
    tenant: Client, whatsapp_id: str, stored: str
) -> None:
    """A WhatsApp id is never refused for not being a valid number; the number derived from it is stored only when
    it is one, by both RPCs."""
    assert (await resolve(tenant, whatsapp_id)).phone_number == stored
    other = whatsapp_id[:-1] + str((int(whatsapp_id[-1]) + 1) % 10)
    assert (await upsert(tenant, other)).phone_number == stored.replace(whatsapp_id, other)


async def test_upsert_and_resolve_inbound_refuse_the_same_invalid_number(tenant: Client) -> None:
    for number in ("12", "+44 7400", "not a number"):
        await expect(resolve(tenant, "447400123456", number), BAD, "phone_number")
        await expect(upsert(tenant, "447400123457", number), BAD, "customer.phone_number")
    assert (await resolve(tenant, "4474001", "07400 123456")).phone_number == "+447400123456"
    assert (await upsert(tenant, "4474002", "07400 123457")).phone_number == "+447400123457"
