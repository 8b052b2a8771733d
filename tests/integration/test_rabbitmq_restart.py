"""The relay against a RabbitMQ node of this test's own, killed and started again while events are being relayed:
nothing committed is lost. The consumer's queue is a quorum queue, as docs/events.md tells operators to declare.

Never the machine's RabbitMQ: tests/integration/rabbitnode.py starts a separate node on free ports and data
directories of its own, and only that node is killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from statemgr import server as server_mod
from statemgr.config import Settings
from tests.integration import rabbitnode
from tests.integration.conftest import Client
from tests.integration.test_events_helpers import AmqpQueue, append

QUORUM = {"x-queue-type": "quorum"}
EVENTS = 150


@pytest.fixture
def rabbit() -> Iterator[rabbitnode.RabbitNode]:
    rabbitnode.require()
    node = rabbitnode.RabbitNode()
    try:
        node.start()
        yield node
    finally:
        node.remove()


@pytest.fixture
def settings(settings: Settings, rabbit: rabbitnode.RabbitNode) -> Settings:
    return dataclasses.replace(settings, amqp_url=rabbit.url, event_poll_seconds=0.5)


def unpublished(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as owner:  # the owner: no tenant needed to count them all
        row = owner.execute("SELECT count(*) FROM events WHERE published_at IS NULL").fetchone()
    assert row is not None
    return int(row[0])


async def until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


# A crash (SIGKILL) with a classic durable queue, and a clean restart (SIGTERM, as a rolling restart does) with a
# quorum queue. Not a crash with a quorum queue: on this machine's RabbitMQ (Debian's 3.10) a single-node quorum
# queue SIGKILLed mid-publish accepted no publish again for over 200 s after the restart (no confirm, no nack); the
# relay kept every event in PostgreSQL and retried, so nothing was lost, but nothing was delivered either.
@pytest.mark.parametrize(
    ("arguments", "stop"),
    [(None, "kill"), (QUORUM, "stop")],
    ids=["classic-queue-crash", "quorum-queue-restart"],
)
async def test_a_broker_stopped_and_restarted_mid_relay_loses_nothing(
    server: server_mod.Server,
    tenant: Client,
    rabbit: rabbitnode.RabbitNode,
    settings: Settings,
    database_url: str,
    arguments: dict[str, str] | None,
    stop: str,
) -> None:
    queue = AmqpQueue(rabbit.url, settings.amqp_exchange, arguments=arguments)
    await asyncio.to_thread(queue.declare)
    tenant_id, rooms = uuid.UUID(tenant.tenant_id), [uuid.uuid4() for _ in range(5)]
    written: list[str] = []

    async def writer() -> None:
        for i in range(EVENTS):
            written.append(await append(server.app, tenant_id, rooms[i % len(rooms)]))
            await asyncio.sleep(0.01)

    writing = asyncio.create_task(writer())
    await until(lambda: len(written) >= EVENTS // 3 and unpublished(database_url) < len(written), 20)
    at_kill = len(written)
    await asyncio.to_thread(getattr(rabbit, stop))  # mid-relay: events are being written and published
    await asyncio.sleep(1.0)
    before_restart = len(written)
    await asyncio.to_thread(rabbit.start)
    await writing
    assert before_restart > at_kill  # some events were committed while the broker was down: they waited in PostgreSQL

    await until(lambda: unpublished(database_url) == 0, 30)
    missing = await asyncio.to_thread(queue.drain, set(written), 30.0)
    assert not missing, f"{len(missing)} of {EVENTS} events lost"
    assert len(set(queue.ids)) == EVENTS  # duplicates are allowed (at least once), with the same message id
