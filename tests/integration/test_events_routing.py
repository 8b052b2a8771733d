"""RabbitMQ routing keys `<tenant id>.<EventType name>`, one binding per tenant or per type, and unroutable events
delivered once a queue is bound: by the relay's retries with backoff, or at once with `statemgr events
retry-unroutable` (issue 8, defect 6). Real RabbitMQ, an exchange of the test's own."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from statemgr import server as server_mod
from statemgr.app import App
from statemgr.config import Settings
from statemgr.v1 import event_pb2
from statemgr.v1 import integration_service_pb2 as ins
from tests.integration import services
from tests.integration.conftest import Client, Clients
from tests.integration.test_events_helpers import AmqpQueue, delete_exchange


@pytest.fixture
def settings(settings: Settings) -> Iterator[Settings]:
    services.require(services.AMQP_URL, 5672, "RabbitMQ")
    exchange = f"statemgr.test.{uuid.uuid4().hex[:10]}"
    yield dataclasses.replace(
        settings,
        amqp_url=services.AMQP_URL,
        amqp_exchange=exchange,
        event_poll_seconds=0.2,
        event_leader_poll_seconds=0.2,
        event_unroutable_retry_seconds=0.3,
        event_unroutable_retry_max_seconds=0.6,
    )
    delete_exchange(services.AMQP_URL, exchange)


@pytest.fixture
async def queues(settings: Settings) -> AsyncIterator[Callable[[str], Any]]:
    """Declares queues bound with a pattern to the test's exchange; deletes them at the end."""
    made: list[AmqpQueue] = []

    async def bind(pattern: str) -> AmqpQueue:
        queue = AmqpQueue(services.AMQP_URL, settings.amqp_exchange, binding=pattern)
        await asyncio.to_thread(queue.declare)
        made.append(queue)
        return queue

    yield bind
    for queue in made:
        await asyncio.to_thread(queue.delete)


async def inbound(client: Client, whatsapp_id: str = "447400123456") -> None:
    """One first message: customer.created, conversation.created and message.recorded."""
    await client.integration.ResolveInbound(
        ins.ResolveInboundRequest(whatsapp_id=whatsapp_id, whatsapp_message_id=f"w-{uuid.uuid4()}", content="hi")
    )


def events_of(database_url: str, tenant_id: str, event_type: str | None = None) -> list[dict[str, Any]]:
    query = "SELECT id::text, type, unroutable_at, unroutable_attempts, published_at FROM events WHERE tenant_id = %s"
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute(query, (tenant_id,)).fetchall()
    return [r for r in rows if event_type is None or r["type"] == event_type]


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def gauge(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def assert_keys_match_bodies(queue: AmqpQueue) -> None:
    for (_, routing_key, body), properties in zip(queue.messages, queue.properties, strict=True):
        event = event_pb2.Event.FromString(body)
        assert routing_key == f"{event.tenant_id}.{event_pb2.EventType.Name(event.type)}"
        assert properties.type == event_pb2.EventType.Name(event.type)


async def test_one_pattern_binds_a_tenant_and_one_binds_a_type(
    server: server_mod.Server, clients: Clients, queues: Any, settings: Settings
) -> None:
    first, second = await clients.new_tenant("First"), await clients.new_tenant("Second")
    by_tenant = await queues(f"{first.tenant_id}.*")
    by_type = await queues("*.EVENT_TYPE_MESSAGE_RECORDED")
    await inbound(first)
    await inbound(second)
    firsts = {e["id"] for e in events_of(settings.database_url, first.tenant_id)}
    recorded = {
        e["id"]
        for tenant in (first, second)
        for e in events_of(settings.database_url, tenant.tenant_id, "message.recorded")
    }
    assert len(firsts) == 3 and len(recorded) == 2
    assert not await asyncio.to_thread(by_tenant.drain, firsts, 10.0)
    assert not await asyncio.to_thread(by_type.drain, recorded, 10.0)
    await asyncio.sleep(0.5)  # nothing else arrives: the patterns select exactly these
    await asyncio.to_thread(by_tenant.drain, set(), 0.5)
    await asyncio.to_thread(by_type.drain, set(), 0.5)
    assert set(by_tenant.ids) == firsts and len(by_tenant.ids) == 3
    assert set(by_type.ids) == recorded and len(by_type.ids) == 2
    assert_keys_match_bodies(by_tenant)
    assert_keys_match_bodies(by_type)


async def test_unroutable_events_are_delivered_by_retries_once_a_queue_is_bound(
    server: server_mod.Server, tenant: Client, queues: Any, settings: Settings
) -> None:
    delivered_before = gauge("statemgr_events_unroutable_delivered_total")
    await inbound(tenant)
    waiting = lambda: events_of(settings.database_url, tenant.tenant_id)  # noqa: E731
    await until(lambda: all(e["unroutable_at"] for e in waiting()), 10, "the events found unroutable")
    await until(lambda: gauge("statemgr_events_unroutable_waiting") == 3, 10, "the waiting gauge to say 3")
    # no queue yet: they keep bouncing, further apart each time (0.3 s, 0.6 s, 0.6 s, ...)
    await until(lambda: min(e["unroutable_attempts"] for e in waiting()) >= 3, 10, "three attempts")
    queue = await queues(f"{tenant.tenant_id}.*")
    ids = {e["id"] for e in waiting()}
    assert not await asyncio.to_thread(queue.drain, ids, 10.0)
    assert_keys_match_bodies(queue)
    await until(lambda: all(e["published_at"] for e in waiting()), 5, "the events marked published")
    await until(lambda: gauge("statemgr_events_unroutable_waiting") == 0, 10, "the waiting gauge to say 0")
    assert gauge("statemgr_events_unroutable_delivered_total") - delivered_before == 3


@pytest.fixture
def slow_retry(settings: Settings) -> Settings:
    return dataclasses.replace(settings, event_unroutable_retry_seconds=3600, event_unroutable_retry_max_seconds=3600)


async def test_the_cli_sends_waiting_unroutable_events_at_once(
    slow_server: server_mod.Server, slow_clients: Clients, queues: Any, slow_retry: Settings
) -> None:
    tenant, other = await slow_clients.new_tenant("A"), await slow_clients.new_tenant("B")
    await inbound(tenant)
    await inbound(other)
    mine = lambda: events_of(slow_retry.database_url, tenant.tenant_id)  # noqa: E731
    await until(lambda: all(e["unroutable_at"] for e in mine()), 10, "the events found unroutable")
    queue = await queues("#")
    await asyncio.sleep(1.0)
    assert await asyncio.to_thread(queue.drain, set(), 0.5) == set() and not queue.ids  # next retry: in an hour
    env = {**os.environ, "STATEMGR_DATABASE_URL": slow_retry.database_url}
    command = [sys.executable, "-m", "statemgr.cli", "events", "retry-unroutable", "--tenant", tenant.tenant_id]
    done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3 unroutable events"), done.stdout
    ids = {e["id"] for e in mine()}
    assert not await asyncio.to_thread(queue.drain, ids, 10.0)
    await asyncio.to_thread(queue.drain, set(), 1.0)
    assert set(queue.ids) == ids  # the other tenant's events still wait for their own retry
    others = events_of(slow_retry.database_url, other.tenant_id)
    assert all(e["published_at"] is None and e["unroutable_at"] for e in others)


@pytest.fixture
async def slow_server(slow_retry: Settings) -> AsyncIterator[server_mod.Server]:
    started = await server_mod.start(App.build(slow_retry), slow_retry.listen)
    yield started
    await started.stop(grace=0.5)


@pytest.fixture
async def slow_clients(slow_server: server_mod.Server) -> AsyncIterator[Clients]:
    opened = Clients(slow_server.port)
    yield opened
    await opened.close()
