"""RabbitMQ cut behind a TCP proxy while clients write through the server: the calls do not notice (events wait in
PostgreSQL), and once RabbitMQ is back every event is published, none lost, within a bound (docs/operations.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from statemgr import server as server_mod
from statemgr.config import Settings
from statemgr.v1 import conversation_pb2
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration import faults, services
from tests.integration.conftest import Client
from tests.integration.tcpproxy import TcpProxy
from tests.integration.test_events_helpers import AmqpQueue, delete_exchange

CUT_SECONDS = 2.0
DRAIN_BOUND = 15.0  # the relay retries every 2 s at most, then publishes the backlog in batches of 500


@pytest.fixture
async def rabbit_proxy() -> AsyncIterator[TcpProxy]:
    async with faults.proxy_to(services.require(services.AMQP_URL, 5672, "RabbitMQ"), 5672) as proxy:
        yield proxy


@pytest.fixture
def settings(settings: Settings, rabbit_proxy: TcpProxy) -> Iterator[Settings]:
    exchange = f"statemgr.test.{uuid.uuid4().hex[:10]}"
    yield dataclasses.replace(
        settings,
        amqp_url=faults.proxied(services.AMQP_URL, rabbit_proxy),
        amqp_exchange=exchange,
        event_poll_seconds=0.5,
        event_leader_poll_seconds=0.5,
    )
    delete_exchange(services.AMQP_URL, exchange)


@pytest.fixture
async def amqp_queue(settings: Settings) -> AsyncIterator[AmqpQueue]:
    queue = AmqpQueue(services.AMQP_URL, settings.amqp_exchange)  # bound with "#": every event
    await asyncio.to_thread(queue.declare)
    yield queue
    await asyncio.to_thread(queue.delete)


def _events(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {str(row[0]) for row in conn.execute("SELECT id FROM events").fetchall()}


async def test_rabbitmq_cut_events_wait_then_all_are_published(
    server: server_mod.Server, tenant: Client, rabbit_proxy: TcpProxy, amqp_queue: AmqpQueue, database_url: str
) -> None:
    async def create(key: str) -> str:
        request = cs.CreateConversationRequest(
            conversation=conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-{key}")
        )
        return (await tenant.conversations.CreateConversation(request, timeout=10)).conversation.id

    writer = faults.Writer(create, concurrency=2, pause=0.02).start()
    await asyncio.sleep(0.5)
    await rabbit_proxy.cut()
    await asyncio.sleep(CUT_SECONDS)
    await rabbit_proxy.restore()
    restored_at = time.monotonic()
    await asyncio.sleep(0.5)
    outcomes = await writer.stop()

    assert {o.code for o in outcomes} == {faults.OK}, "RabbitMQ is off the request path"
    written = _events(database_url)
    assert len(written) >= len(outcomes), "every conversation created has its event"
    missing = await asyncio.to_thread(amqp_queue.drain, written, DRAIN_BOUND)
    drained = time.monotonic() - restored_at
    print(f"{len(written)} events, all published {drained:.2f} s after RabbitMQ came back")
    assert not missing, f"{len(missing)} of {len(written)} events never published"
    assert set(amqp_queue.ids) == written, "something published that was never written"
