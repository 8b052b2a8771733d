"""Delivery under load: many writers, many subscribers, disconnects, slow readers, out-of-order commits."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from statemgr import server as server_mod
from statemgr.config import Settings
from statemgr.domain.events import Event, EventType
from statemgr.events import outbox
from statemgr.v1 import conversation_pb2
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration import services
from tests.integration.conftest import Client
from tests.integration.test_events_helpers import (
    AmqpQueue,
    Collector,
    append,
    assert_exactly_once_in_order,
    delete_exchange,
    first_occurrences,
    request,
    subscribe,
    write_conversation,
)

WRITERS = 16
CHANGES = 500


@pytest.fixture
def amqp_url() -> str:
    return services.require(services.AMQP_URL, 5672, "RabbitMQ")


@pytest.fixture
def settings(settings: Settings, amqp_url: str) -> Iterator[Settings]:
    exchange = f"statemgr.test.{uuid.uuid4().hex[:10]}"
    yield dataclasses.replace(
        settings,
        amqp_url=amqp_url,
        amqp_exchange=exchange,
        db_pool_max=24,
        event_heartbeat_seconds=0.5,
        event_poll_seconds=0.5,
    )
    delete_exchange(amqp_url, exchange)


@pytest.fixture
async def amqp_queue(settings: Settings) -> AsyncIterator[AmqpQueue]:
    queue = AmqpQueue(settings.amqp_url, settings.amqp_exchange)
    await asyncio.to_thread(queue.declare)
    yield queue
    await asyncio.to_thread(queue.delete)


async def test_sixteen_writers_every_event_exactly_once_in_order(
    server: server_mod.Server, tenant: Client, amqp_queue: AmqpQueue
) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    stream = await Collector(tenant, request()).started()  # replays from the first event, then follows live
    rooms = [[uuid.uuid4() for _ in range(4)] for _ in range(WRITERS)]

    async def writer(n: int) -> dict[uuid.UUID, list[str]]:
        written: dict[uuid.UUID, list[str]] = {room: [] for room in rooms[n]}
        for i in range(CHANGES):
            room = rooms[n][i % 4]
            hold = 0.05 if i % 40 == 7 else 0.0  # stays open while later-begun transactions commit
            written[room].append(await append(server.app, tenant_id, room, hold))
        return written

    written: dict[uuid.UUID, list[str]] = {}
    for result in await asyncio.gather(*(writer(n) for n in range(WRITERS))):
        written.update(result)
    total = WRITERS * CHANGES
    await stream.wait_for(total, timeout=40)
    await asyncio.sleep(0.5)
    await stream.stop()
    assert_exactly_once_in_order(stream.ids, written)

    missing = await asyncio.to_thread(amqp_queue.drain, {i for ids in written.values() for i in ids}, 40.0)
    assert not missing, f"{len(missing)} events never reached RabbitMQ"
    assert_exactly_once_in_order(first_occurrences(amqp_queue.ids), written)
    assert len(amqp_queue.ids) == total  # no failure here, so no redelivery either


async def test_a_conversation_orders_by_commit_even_when_the_earlier_transaction_began_later(
    server: server_mod.Server, tenant: Client, amqp_queue: AmqpQueue
) -> None:
    """A takes its transaction id first, B commits an event of room R, then A commits its own event of R."""
    tenant_id, room = uuid.UUID(tenant.tenant_id), uuid.uuid4()
    stream = await Collector(tenant, request(rooms=[room])).started()
    b_done = asyncio.Event()

    async def early_begins_late_commits() -> str:
        async with server.app.db.tenant(tenant_id) as conn:
            await conn.execute("SELECT pg_current_xact_id()")  # A's id is now below B's
            await b_done.wait()
            return str(await outbox.append(conn, tenant_id, Event(EventType.CONVERSATION_CLOSED, conversation_id=room)))

    task_a = asyncio.create_task(early_begins_late_commits())
    await asyncio.sleep(0.1)
    b = await append(server.app, tenant_id, room)
    b_done.set()
    a = await task_a
    assert [e.id for e in await stream.wait_for(2)] == [b, a]
    await stream.stop()
    assert not await asyncio.to_thread(amqp_queue.drain, {a, b}, 10.0)
    assert amqp_queue.ids == [b, a]


async def test_state_changes_through_rpcs_arrive_once_in_order(
    server: server_mod.Server, tenant: Client, amqp_queue: AmqpQueue
) -> None:
    stream = await Collector(tenant, request()).started()

    async def conversation(n: int) -> tuple[str, list[int]]:
        created = await tenant.conversations.CreateConversation(
            cs.CreateConversationRequest(conversation=conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-{n}"))
        )
        states = [conversation_pb2.CONVERSATION_STATE_WAITING, conversation_pb2.CONVERSATION_STATE_ACTIVE] * 25
        for state in states:
            await tenant.conversations.TransitionConversation(
                cs.TransitionConversationRequest(conversation_id=created.conversation.id, state=state, reason="t")
            )
        return created.conversation.id, states

    results = await asyncio.gather(*(conversation(n) for n in range(8)))
    events = await stream.wait_for(8 * 51)
    await stream.stop()
    for conversation_id, states in results:
        mine = [e for e in events if e.conversation_id == conversation_id]
        assert [e.conversation_state for e in mine[1:]] == states
    by_conversation = {c: [e.id for e in events if e.conversation_id == c] for c, _ in results}
    assert_exactly_once_in_order([e.id for e in events], by_conversation)
    assert not await asyncio.to_thread(amqp_queue.drain, {e.id for e in events}, 20.0)
    assert_exactly_once_in_order(first_occurrences(amqp_queue.ids), by_conversation)


async def test_two_hundred_subscribers_each_get_their_rooms(server: server_mod.Server, tenant: Client) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    rooms = [uuid.uuid4() for _ in range(50)]
    streams = [Collector(tenant, request(rooms=[rooms[n % 50]])) for n in range(190)]
    streams += [Collector(tenant, request()) for _ in range(10)]  # the whole tenant
    await asyncio.gather(*(s.started(timeout=30) for s in streams))
    written = dict(
        zip(
            rooms, await asyncio.gather(*(write_conversation(server.app, tenant_id, r, 20) for r in rooms)), strict=True
        )
    )
    for n, stream in enumerate(streams[:190]):
        expected = written[rooms[n % 50]]
        assert [e.id for e in await stream.wait_for(20)] == expected
    for stream in streams[190:]:
        assert_exactly_once_in_order([e.id for e in await stream.wait_for(1000)], written)
    await asyncio.gather(*(s.stop() for s in streams))


async def test_reconnecting_with_the_last_cursor_loses_and_repeats_nothing(
    server: server_mod.Server, tenant: Client
) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    rooms = [uuid.uuid4() for _ in range(4)]
    writers = asyncio.gather(*(write_conversation(server.app, tenant_id, r, 300, 25, 0.03) for r in rooms))
    received: list[str] = []
    resume: str | None = None
    reconnects, with_events, deadline = 0, 0, time.monotonic() + 30
    # At least 6 connections whatever the machine's speed: a fast run must not test fewer resumptions.
    while not writers.done() or len(received) < 1200 or reconnects < 6:
        stream = Collector(tenant, request(after=resume)).start()
        await asyncio.sleep(random.uniform(0.05, 0.4))
        await stream.stop()
        received.extend(stream.ids)
        with_events += bool(stream.ids)
        if stream.events or stream.heartbeats:
            resume = stream.cursor
        reconnects += 1
        assert time.monotonic() < deadline, f"only {len(received)} events after {reconnects} reconnects"
    written = dict(zip(rooms, await writers, strict=True))
    assert_exactly_once_in_order(received, written)
    assert with_events >= 2, "events must arrive over several connections, each resuming from the last cursor"


async def test_a_slow_subscriber_is_cut_off_and_resumes_without_loss(server: server_mod.Server, tenant: Client) -> None:
    assert server.app.events.dispatcher is not None
    server.app.events.dispatcher.buffer_size = 20  # STATEMGR_EVENT_SUBSCRIBER_BUFFER, for the next subscriptions
    tenant_id, room = uuid.UUID(tenant.tenant_id), uuid.uuid4()
    # No BDP probing: the HTTP/2 window stays at 64 KiB, so a client that stops reading stops the server's writes
    # after a few hundred events, as a slow client on a real network would.
    options = [("grpc.http2.bdp_probe", 0)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=options) as channel:
        slow = dataclasses.replace(tenant, channel=channel)
        slow_call = subscribe(slow, request())
        first = await slow_call.read()
        assert first.HasField("heartbeat")  # live, and now not reading
        written = await write_conversation(server.app, tenant_id, room, 3000)
        got: list[str] = []
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            while True:
                item = await asyncio.wait_for(slow_call.read(), 10)
                assert item is not grpc.aio.EOF
                if item.HasField("event"):
                    got.append(item.event.id)
                    last = item.event.cursor
    assert cut.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 0 < len(got) < len(written)
    resumed = Collector(tenant, request(after=last)).start()
    rest = await resumed.wait_for(len(written) - len(got))
    await resumed.stop()
    assert got + [e.id for e in rest] == written
