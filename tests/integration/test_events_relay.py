"""The relay to RabbitMQ: confirms, outages, a relay killed mid-batch, leadership across processes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg import sql

from statemgr import server as server_mod
from statemgr.app import App
from statemgr.config import Settings
from statemgr.domain.events import Event, EventType
from statemgr.events import outbox
from statemgr.events.publisher import CONTENT_TYPE
from statemgr.v1 import conversation_pb2, event_pb2
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration import services
from tests.integration.conftest import Client, Clients
from tests.integration.tcpproxy import TcpProxy
from tests.integration.test_events_helpers import (
    AmqpQueue,
    Collector,
    ServeProcess,
    delete_exchange,
    request,
    write_conversation,
)


@pytest.fixture
async def rabbit_proxy() -> AsyncIterator[TcpProxy]:
    url = services.require(services.AMQP_URL, 5672, "RabbitMQ")
    proxy = TcpProxy(*_host_port(url))
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def settings(settings: Settings, rabbit_proxy: TcpProxy) -> Iterator[Settings]:
    """The relay talks to RabbitMQ through a proxy the test can cut; the test's queue connects directly."""
    exchange = f"statemgr.test.{uuid.uuid4().hex[:10]}"
    yield dataclasses.replace(
        settings,
        amqp_url=f"amqp://guest:guest@{rabbit_proxy.address}/%2F",
        amqp_exchange=exchange,
        event_heartbeat_seconds=0.5,
        event_poll_seconds=0.5,
        event_leader_poll_seconds=0.5,
        db_pool_max=16,
    )
    delete_exchange(services.AMQP_URL, exchange)


@pytest.fixture
async def amqp_queue(settings: Settings) -> AsyncIterator[AmqpQueue]:
    queue = AmqpQueue(services.AMQP_URL, settings.amqp_exchange)
    await asyncio.to_thread(queue.declare)
    yield queue
    await asyncio.to_thread(queue.delete)


async def test_messages_carry_the_contract(server: server_mod.Server, tenant: Client, amqp_queue: AmqpQueue) -> None:
    tenant_id, room = uuid.UUID(tenant.tenant_id), uuid.uuid4()
    ids = await write_conversation(server.app, tenant_id, room, 3)
    assert not await asyncio.to_thread(amqp_queue.drain, set(ids), 10.0)
    assert amqp_queue.ids == ids
    message_id, routing_key, body = amqp_queue.messages[0]
    properties = amqp_queue.properties[0]
    assert routing_key == f"{tenant_id}.EVENT_TYPE_CONVERSATION_STATE_CHANGED"
    assert properties.content_type == CONTENT_TYPE and properties.type == "EVENT_TYPE_CONVERSATION_STATE_CHANGED"
    assert properties.delivery_mode == 2
    event = event_pb2.Event.FromString(body)
    assert event.id == message_id and event.tenant_id == str(tenant_id) and event.conversation_id == str(room)
    assert event.type == event_pb2.EVENT_TYPE_CONVERSATION_STATE_CHANGED
    await _until(lambda: _published_count(server.app) == 3, 5, "published_at set after the confirms")


async def test_rabbitmq_outage_loses_nothing_and_drains_after(
    server: server_mod.Server, tenant: Client, amqp_queue: AmqpQueue, rabbit_proxy: TcpProxy
) -> None:
    tenant_id, rooms = uuid.UUID(tenant.tenant_id), [uuid.uuid4() for _ in range(4)]
    before = await asyncio.gather(*(write_conversation(server.app, tenant_id, r, 50) for r in rooms))
    await _until(lambda: _published_count(server.app) == 200, 10, "the first events published")
    writing = asyncio.gather(*(write_conversation(server.app, tenant_id, r, 100) for r in rooms))
    await asyncio.sleep(0.05)
    await rabbit_proxy.cut()  # mid-stream: some batches are in flight
    during = await writing
    published_at_cut = _published_ids(server.app)
    await asyncio.sleep(3.0)  # the relay retries meanwhile; nothing can be confirmed
    assert _published_ids(server.app) == published_at_cut
    assert len(published_at_cut) < 600
    assert (REGISTRY.get_sample_value("statemgr_events_backlog") or 0) > 0
    await rabbit_proxy.restore()
    written = {r: b + d for r, b, d in zip(rooms, before, during, strict=True)}
    every = {i for ids in written.values() for i in ids}
    await _until(lambda: _published_count(server.app) == 600, 20, "the backlog drained")
    assert not await asyncio.to_thread(amqp_queue.drain, every, 20.0)
    assert set(amqp_queue.ids) == every
    assert published_at_cut <= set(amqp_queue.ids)  # marked only after the broker confirmed
    _assert_in_order_per_conversation(amqp_queue.ids, written)


async def test_unroutable_events_are_marked_counted_and_do_not_block(
    server: server_mod.Server, tenant: Client, settings: Settings
) -> None:
    tenant_id = uuid.UUID(tenant.tenant_id)
    queue = AmqpQueue(services.AMQP_URL, settings.amqp_exchange, binding="*.EVENT_TYPE_CONVERSATION_CLOSED")
    await asyncio.to_thread(queue.declare)
    try:
        returned_before = REGISTRY.get_sample_value("statemgr_events_unroutable_total") or 0.0
        unroutable = await write_conversation(server.app, tenant_id, uuid.uuid4(), 5)  # state_changed: no binding
        async with server.app.db.tenant(tenant_id) as conn:
            closed = str(await outbox.append(conn, tenant_id, Event(EventType.CONVERSATION_CLOSED, uuid.uuid4())))
        assert not await asyncio.to_thread(queue.drain, {closed}, 10.0)
        await _until(lambda: len(_marked(server.app, "unroutable_at")) == 5, 5, "returned events marked")
        assert _marked(server.app, "unroutable_at") == set(unroutable)
        assert _published_ids(server.app) == {closed}

        def counted() -> float:
            return (REGISTRY.get_sample_value("statemgr_events_unroutable_total") or 0.0) - returned_before

        await _until(lambda: counted() == 5, 5, "statemgr_events_unroutable_total to count them")
    finally:
        await asyncio.to_thread(queue.delete)


async def test_relay_killed_mid_batch_loses_nothing_and_another_takes_over(
    settings: Settings, amqp_queue: AmqpQueue, rabbit_proxy: TcpProxy
) -> None:
    """A `statemgr serve` process relays; its link to RabbitMQ stalls, so the batch it sends waits for confirms that
    never come; it is SIGKILLed; the stalled bytes then reach the broker. Another process takes over."""
    relay = await ServeProcess(dataclasses.replace(settings, listen="127.0.0.1:0")).start()
    await relay.wait_for_log("leadership_taken", 10)
    standby = await server_mod.start(App.build(settings), settings.listen)
    try:
        tenant_id = await _new_tenant(standby.app)
        writing = asyncio.create_task(_bulk_append(standby.app, tenant_id, 20_000))
        await _until(lambda: _published_count(standby.app) > 2_000, 20, "the relay publishing")
        assert not standby.app.background.leadership.leading.is_set()  # exactly one relay
        rabbit_proxy.stall()
        stalled_at = _published_count(standby.app)
        await asyncio.sleep(1.0)  # the writers go on; the relay sends its next batch and waits for the confirms
        assert _published_count(standby.app) == stalled_at
        relay.kill()
        killed = time.monotonic()
        rabbit_proxy.unstall()
        await asyncio.wait_for(standby.app.background.leadership.leading.wait(), 10)
        takeover = time.monotonic() - killed
        ids = await writing
        await _until(lambda: _published_count(standby.app) == len(ids), 30, "the new leader drained the backlog")
        assert not await asyncio.to_thread(amqp_queue.drain, set(ids), 20.0)
    finally:
        await relay.stop()
        await standby.stop(grace=0.5)
    assert takeover < 5.0
    assert set(amqp_queue.ids) == set(ids)  # nothing lost, no foreign ids
    assert _first_seen(amqp_queue.ids) == ids  # one conversation: first deliveries in log order
    bodies: dict[str, bytes] = {}
    for message_id, _, body in amqp_queue.messages:
        assert bodies.setdefault(message_id, body) == body  # a duplicate is the same event, same id
        assert event_pb2.Event.FromString(body).id == message_id
    print(f"takeover after {takeover:.2f} s; {len(amqp_queue.ids) - len(ids)} duplicates (same ids)")


async def test_an_event_written_through_one_process_reaches_a_subscriber_of_another_within_a_second(
    settings: Settings, server: server_mod.Server, tenant: Client
) -> None:
    other = await ServeProcess(dataclasses.replace(settings, listen="127.0.0.1:0", amqp_url="")).start()
    clients = Clients(other.port)
    try:
        created = await tenant.conversations.CreateConversation(
            cs.CreateConversationRequest(conversation=conversation_pb2.Conversation(whatsapp_conversation_id="wa-x"))
        )
        conversation_id = created.conversation.id
        stream = await Collector(clients.with_key(tenant.api_key, tenant.tenant_id), request(from_now=True)).started()
        states = [conversation_pb2.CONVERSATION_STATE_WAITING, conversation_pb2.CONVERSATION_STATE_ACTIVE] * 3
        for n, state in enumerate(states):
            sent = time.monotonic()
            await tenant.conversations.TransitionConversation(
                cs.TransitionConversationRequest(conversation_id=conversation_id, state=state, reason="x")
            )
            await stream.wait_for(n + 1, timeout=5)
            assert stream.events[n].conversation_state == state
            assert stream.received_at[stream.events[n].id] - sent < 1.0
        await stream.stop()
    finally:
        await clients.close()
        await other.stop()


async def _new_tenant(app: App) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    async with app.db.tenant(tenant_id) as conn:
        await conn.execute("INSERT INTO tenants (id, display_name) VALUES (%s, 'relay test')", (tenant_id,))
    return tenant_id


async def _bulk_append(app: App, tenant_id: uuid.UUID, count: int, per_transaction: int = 500) -> list[str]:
    room, ids = uuid.uuid4(), []
    for _ in range(count // per_transaction):
        async with app.db.tenant(tenant_id) as conn:
            for _ in range(per_transaction):
                event = Event(EventType.CONVERSATION_STATE_CHANGED, conversation_id=room, conversation_state="active")
                ids.append(str(await outbox.append(conn, tenant_id, event)))
    return ids


def _admin(app: App) -> psycopg.Connection[Any]:
    return psycopg.connect(app.settings.database_url, autocommit=True)


def _published_count(app: App) -> int:
    with _admin(app) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE published_at IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


def _published_ids(app: App) -> set[str]:
    return _marked(app, "published_at")


def _marked(app: App, column: str) -> set[str]:
    query = sql.SQL("SELECT id::text FROM events WHERE {} IS NOT NULL").format(sql.Identifier(column))
    with _admin(app) as conn:
        rows = conn.execute(query).fetchall()
    return {row[0] for row in rows}


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _first_seen(ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i, None)
    return list(seen)


def _assert_in_order_per_conversation(received: list[str], written: dict[Any, list[str]]) -> None:
    first = {i: n for n, i in reversed(list(enumerate(received)))}
    for room, ids in written.items():
        assert [first[i] for i in ids] == sorted(first[i] for i in ids), f"room {room} out of order"


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 5672
