"""EventService.Subscribe: replay then live, filters, cursors, heartbeats, and its error answers."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import grpc
import pytest

from statemgr import server as server_mod
from statemgr.app import App
from statemgr.config import Settings
from statemgr.events import cursor as cursor_mod
from statemgr.v1 import conversation_pb2, event_pb2
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.test_events_helpers import Collector, append, request, subscribe, write_conversation


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, event_heartbeat_seconds=0.3, event_poll_seconds=0.5)


def _app(server: server_mod.Server) -> App:
    return server.app


async def test_replays_from_the_start_then_follows_live(server: server_mod.Server, tenant: Client) -> None:
    tenant_id, room = uuid.UUID(tenant.tenant_id), uuid.uuid4()
    before = await write_conversation(server.app, tenant_id, room, 5)
    stream = await Collector(tenant, request()).started()
    after = await write_conversation(server.app, tenant_id, room, 5)
    events = await stream.wait_for(10)
    await stream.stop()
    assert [e.id for e in events] == before + after
    first = events[0]
    assert first.tenant_id == str(tenant_id) and first.conversation_id == str(room)
    assert first.type == event_pb2.EVENT_TYPE_CONVERSATION_STATE_CHANGED
    assert first.conversation_state == conversation_pb2.CONVERSATION_STATE_WAITING
    assert first.cursor and first.HasField("create_time")


async def test_resumes_after_a_cursor_without_repeating(server: server_mod.Server, tenant: Client) -> None:
    tenant_id, room = uuid.UUID(tenant.tenant_id), uuid.uuid4()
    ids = await write_conversation(server.app, tenant_id, room, 6)
    first = Collector(tenant, request()).start()
    await first.wait_for(6)
    await first.stop()
    resumed = Collector(tenant, request(after=first.events[2].cursor)).start()
    assert [e.id for e in await resumed.wait_for(3)] == ids[3:]
    await asyncio.sleep(0.5)
    assert len(resumed.events) == 3
    await resumed.stop()


async def test_rooms_and_types_filter_the_stream(server: server_mod.Server, tenant: Client) -> None:
    tenant_id, room, other = uuid.UUID(tenant.tenant_id), uuid.uuid4(), uuid.uuid4()
    mine = await write_conversation(server.app, tenant_id, room, 2)
    await write_conversation(server.app, tenant_id, other, 2)
    wrong_type = event_pb2.EVENT_TYPE_CONVERSATION_CLOSED
    by_room = await Collector(tenant, request(rooms=[room])).started()
    by_type = await Collector(tenant, request(types=[wrong_type])).started()
    mine += await write_conversation(server.app, tenant_id, room, 2)
    await write_conversation(server.app, tenant_id, other, 2)
    assert [e.id for e in await by_room.wait_for(4)] == mine
    await asyncio.sleep(0.6)  # several heartbeats: the feed has read everything by now
    assert len(by_room.events) == 4 and by_type.events == []
    await by_room.stop()
    await by_type.stop()


async def test_from_now_skips_the_past(server: server_mod.Server, tenant: Client) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    await write_conversation(server.app, tenant_id, uuid.uuid4(), 3)
    stream = await Collector(tenant, request(from_now=True)).started()
    new = await append(server.app, tenant_id, uuid.uuid4())
    assert [e.id for e in await stream.wait_for(1)] == [new]
    await stream.stop()


async def test_heartbeats_carry_a_cursor_past_filtered_events(server: server_mod.Server, tenant: Client) -> None:
    tenant_id, room = uuid.UUID(tenant.tenant_id), uuid.uuid4()
    stream = await Collector(tenant, request(rooms=[room])).started()
    others = await write_conversation(server.app, tenant_id, uuid.uuid4(), 3)  # another room's traffic
    everything = Collector(tenant, request()).start()
    last = cursor_mod.decode((await everything.wait_for(3))[-1].cursor, tenant_id)
    await everything.stop()
    deadline = time.monotonic() + 10
    while cursor_mod.decode(stream.heartbeats[-1].cursor, tenant_id) < last:
        assert time.monotonic() < deadline, "heartbeats never moved past the other room's events"
        await asyncio.sleep(0.1)
    await stream.stop()
    assert stream.events == []
    resumed = await Collector(tenant, request(after=stream.heartbeats[-1].cursor)).started()
    await asyncio.sleep(0.3)
    assert resumed.events == [] and len(others) == 3  # resuming there does not replay the other room
    await resumed.stop()


async def test_state_changes_made_through_conversation_service_arrive(
    server: server_mod.Server, tenant: Client
) -> None:
    created = (
        await tenant.conversations.CreateConversation(
            cs.CreateConversationRequest(conversation=conversation_pb2.Conversation(whatsapp_conversation_id="wa-1"))
        )
    ).conversation
    stream = await Collector(tenant, request(rooms=[created.id])).started()
    for state in (conversation_pb2.CONVERSATION_STATE_WAITING, conversation_pb2.CONVERSATION_STATE_ACTIVE):
        await tenant.conversations.TransitionConversation(
            cs.TransitionConversationRequest(conversation_id=created.id, state=state, reason="test")
        )
    events = await stream.wait_for(3)
    await stream.stop()
    assert [e.type for e in events] == [
        event_pb2.EVENT_TYPE_CONVERSATION_CREATED,
        event_pb2.EVENT_TYPE_CONVERSATION_STATE_CHANGED,
        event_pb2.EVENT_TYPE_CONVERSATION_STATE_CHANGED,
    ]
    assert [e.conversation_state for e in events[1:]] == [
        conversation_pb2.CONVERSATION_STATE_WAITING,
        conversation_pb2.CONVERSATION_STATE_ACTIVE,
    ]


async def test_an_event_arrives_within_a_second(server: server_mod.Server, tenant: Client) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    stream = await Collector(tenant, request(from_now=True)).started()
    for _ in range(5):
        sent = time.monotonic()
        event_id = await append(server.app, tenant_id, uuid.uuid4())
        await stream.wait_for(len(stream.events) + 1, timeout=5)
        assert stream.events[-1].id == event_id
        assert stream.received_at[event_id] - sent < 1.0
    await stream.stop()


async def test_tenants_never_see_each_other(clients: Clients, server: server_mod.Server) -> None:
    a, b = await clients.new_tenant("A"), await clients.new_tenant("B")
    stream_a = await Collector(a, request()).started()
    stream_b = await Collector(b, request()).started()
    from_a = await append(server.app, uuid.UUID(a.tenant_id), uuid.uuid4())
    from_b = await append(server.app, uuid.UUID(b.tenant_id), uuid.uuid4())
    assert [e.id for e in await stream_a.wait_for(1)] == [from_a]
    assert [e.id for e in await stream_b.wait_for(1)] == [from_b]
    await asyncio.sleep(0.5)
    assert len(stream_a.events) == 1 and len(stream_b.events) == 1
    await stream_a.stop()
    await stream_b.stop()


async def test_a_cursor_of_another_tenant_is_refused(clients: Clients, server: server_mod.Server) -> None:
    a, b = await clients.new_tenant("A"), await clients.new_tenant("B")
    await append(server.app, uuid.UUID(a.tenant_id), uuid.uuid4())
    stream = Collector(a, request()).start()
    foreign = (await stream.wait_for(1))[0].cursor
    await stream.stop()
    refused = Collector(b, request(after=foreign)).start()
    error = await refused.wait_error()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "another tenant" in (error.details() or "")


async def test_bad_requests_name_the_field(tenant: Client) -> None:
    bad = grpc.StatusCode.INVALID_ARGUMENT
    cases = [
        (request(after="not-a-cursor"), "after_cursor"),
        (request(rooms=["nope"]), "conversation_ids[0]"),
        (request(types=[event_pb2.EVENT_TYPE_UNSPECIFIED]), "event_types[0]"),
        (request(rooms=[uuid.uuid4() for _ in range(1001)]), "conversation_ids"),
    ]
    for req, field in cases:
        await expect(_first(tenant, req), bad, field)


async def test_a_forged_cursor_of_the_right_tenant_is_just_a_position(
    server: server_mod.Server, tenant: Client
) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    ids = await write_conversation(server.app, tenant_id, uuid.uuid4(), 2)
    start = cursor_mod.encode(tenant_id, cursor_mod.Position(1, 0))
    stream = Collector(tenant, request(after=start)).start()
    assert [e.id for e in await stream.wait_for(2)] == ids
    await stream.stop()


async def _first(client: Client, req: object) -> object:
    async for item in subscribe(client, req):
        return item
    return None
