"""The live side of AnalyticsService with the consumer running as the leader's duty, as in production: the live
view follows changes within about two seconds, GetSystemHealth reports real checks and the rollup lag."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid

import grpc
import pytest

from statemgr import server as server_mod
from statemgr.app import App
from statemgr.config import Settings
from statemgr.v1 import analytics_service_pb2 as apb
from statemgr.v1 import analytics_service_pb2_grpc
from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import message_pb2 as mpb
from statemgr.v1 import message_service_pb2 as ms
from tests.integration import services
from tests.integration.conftest import Client, Clients
from tests.integration.test_events_helpers import delete_exchange

WAITING = cpb.CONVERSATION_STATE_WAITING
ACTIVE = cpb.CONVERSATION_STATE_ACTIVE


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, analytics_poll_seconds=0.2, analytics_live_seconds=0.2)


def stub(client: Client) -> analytics_service_pb2_grpc.AnalyticsServiceStub:
    return analytics_service_pb2_grpc.AnalyticsServiceStub(client.channel)


async def next_matching(stream: object, predicate: object, seconds: float) -> apb.StreamLiveViewResponse:
    async with asyncio.timeout(seconds):
        async for view in stream:  # type: ignore[attr-defined]
            if predicate(view):  # type: ignore[operator]
                return view  # type: ignore[no-any-return]
    raise AssertionError("the stream ended")


def open_count(view: apb.StreamLiveViewResponse, state: int) -> int:
    return sum(s.count for s in view.open_conversations if s.state == state)


async def test_the_live_view_follows_changes_within_two_seconds(clients: Clients) -> None:
    tenant = await clients.new_tenant("Live")
    stream = stub(tenant).StreamLiveView(apb.StreamLiveViewRequest())
    first = await next_matching(stream, lambda v: True, 10)
    assert (first.waiting, first.messages_last_minute, list(first.open_conversations)) == (0, 0, [])

    conversation = cpb.Conversation(whatsapp_conversation_id="wa-live")
    created = await tenant.conversations.CreateConversation(cs.CreateConversationRequest(conversation=conversation))
    cid = created.conversation.id
    for _ in range(3):
        message = mpb.Message(conversation_id=cid, direction=mpb.MESSAGE_DIRECTION_INBOUND, content="hi")
        message.whatsapp_message_id = f"wamid.live.{time.monotonic_ns()}"
        await tenant.messages.RecordMessage(ms.RecordMessageRequest(message=message))
    await tenant.conversations.TransitionConversation(
        cs.TransitionConversationRequest(conversation_id=cid, state=WAITING)
    )
    changed = time.monotonic()
    view = await next_matching(stream, lambda v: v.waiting == 1 and v.messages_last_minute == 3, 10)
    # within 2 s of the change (plus slack for a loaded machine: the bound asserted is generous, the figure logged)
    print(f"live view updated {time.monotonic() - changed:.2f} s after the change")
    assert time.monotonic() - changed < 6
    assert open_count(view, WAITING) == 1 and open_count(view, ACTIVE) == 0
    await asyncio.sleep(1.1)
    later = await next_matching(stream, lambda v: v.oldest_waiting_age.seconds >= 1, 10)
    assert later.waiting == 1

    await tenant.conversations.CloseConversation(cs.CloseConversationRequest(conversation_id=cid))
    closed = await next_matching(stream, lambda v: v.waiting == 0, 10)
    assert list(closed.open_conversations) == [] and closed.oldest_waiting_age.seconds == 0
    stream.cancel()
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        await stream.read()


async def test_system_health_reports_real_checks_and_the_rollup_lag(clients: Clients) -> None:
    tenant = await clients.new_tenant("Health")
    health = await stub(tenant).GetSystemHealth(apb.GetSystemHealthRequest())
    # The test server runs without Redis and RabbitMQ (conftest): those checks say so.
    assert (health.database_ok, health.cache_ok, health.broker_ok) == (True, False, False)
    conversation = cpb.Conversation(whatsapp_conversation_id="wa-health")
    await tenant.conversations.CreateConversation(cs.CreateConversationRequest(conversation=conversation))
    async with asyncio.timeout(10):
        while (health := await stub(tenant).GetSystemHealth(apb.GetSystemHealthRequest())).rollup_backlog:
            await asyncio.sleep(0.1)
    assert health.leader and health.rollup_lag.seconds == 0 and health.rollup_lag.nanos == 0


async def test_system_health_sees_redis_and_rabbitmq_when_they_are_configured(
    settings: Settings, database_url: str
) -> None:
    redis_url = services.require(services.REDIS_URL, 6379, "Redis")
    amqp_url = services.require(services.AMQP_URL, 5672, "RabbitMQ")
    exchange = f"statemgr.test.{uuid.uuid4().hex[:10]}"
    configured = dataclasses.replace(settings, redis_url=redis_url, amqp_url=amqp_url, amqp_exchange=exchange)
    started = await server_mod.start(App.build(configured), configured.listen)
    opened = Clients(started.port)
    try:
        tenant = await opened.new_tenant("Health with dependencies")
        health = await stub(tenant).GetSystemHealth(apb.GetSystemHealthRequest())
        assert (health.database_ok, health.cache_ok, health.broker_ok) == (True, True, True)
    finally:
        await opened.close()
        await started.stop(grace=0.5)
        delete_exchange(amqp_url, exchange)
