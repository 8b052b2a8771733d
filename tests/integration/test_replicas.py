"""Three replicas: three `statemgr serve` units (each its background process and one gRPC worker) on one database,
one Redis Cluster of this module's own and the machine's RabbitMQ (an exchange of the test's own), called as
clients call a deployment: any call to any replica.

- exactly one of them leads (relays and prunes); SIGKILL the leader and another leads within seconds;
- Subscribe on any replica sees every event once, in commit order per conversation, across the failover;
- RabbitMQ gets every event (at least once) across the failover;
- a write through one replica is never read stale through another once it has returned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from google.protobuf import struct_pb2

from statemgr.config import Settings
from statemgr.v1 import conversation_pb2 as pb
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration import rediscluster, services
from tests.integration.conftest import Client, Clients
from tests.integration.test_events_helpers import (
    AmqpQueue,
    Collector,
    ServeProcess,
    assert_exactly_once_in_order,
    delete_exchange,
    request,
)

REPLICAS = 3
LEADER_POLL_SECONDS = 0.5
WAITING, ACTIVE = pb.CONVERSATION_STATE_WAITING, pb.CONVERSATION_STATE_ACTIVE


cluster = pytest.fixture(scope="module", name="cluster")(rediscluster.running)


@pytest.fixture
def settings(settings: Settings, cluster: rediscluster.RedisCluster) -> Iterator[Settings]:
    amqp_url = services.require(services.AMQP_URL, 5672, "RabbitMQ")
    exchange = f"statemgr.test.{uuid.uuid4().hex[:10]}"
    yield dataclasses.replace(
        settings,
        redis_url=cluster.url,
        amqp_url=amqp_url,
        amqp_exchange=exchange,
        event_leader_poll_seconds=LEADER_POLL_SECONDS,
        event_poll_seconds=0.5,
        event_heartbeat_seconds=0.5,
        db_pool_min=1,  # six processes on a PostgreSQL that other test runs share: no idle connections kept
        # The in-process tier hears other replicas' writes only over pub/sub, after they return; without it every
        # read asks Redis, which a write has invalidated before it returns (docs/caching.md).
        cache_local_max_entries=0,
    )
    delete_exchange(amqp_url, exchange)


@pytest.fixture
async def replicas(settings: Settings) -> AsyncIterator[list[ServeProcess]]:
    started = [ServeProcess(settings) for _ in range(REPLICAS)]
    try:
        await asyncio.gather(*(replica.start(30) for replica in started))
        yield started
    finally:
        await asyncio.gather(*(replica.stop() for replica in started))


@pytest.fixture
async def clients(replicas: list[ServeProcess]) -> AsyncIterator[list[Clients]]:
    opened = [Clients(replica.port) for replica in replicas]
    yield opened
    for each in opened:
        await each.close()


async def as_tenant(clients: list[Clients]) -> list[Client]:
    """One tenant, created through the first replica; a client of it on every replica."""
    first = await clients[0].new_tenant("Replicated")
    return [first] + [each.with_key(first.api_key, first.tenant_id) for each in clients[1:]]


async def leaders(replicas: list[ServeProcess], within: float) -> list[int]:
    """Indexes of the replicas that took the leadership and did not give it up, after `within` seconds."""
    await asyncio.sleep(within)
    found = []
    for index, replica in enumerate(replicas):
        events = [line.get("event") for line in replica.lines]
        taken = [n for n, e in enumerate(events) if e == "leadership_taken"]
        released = [n for n, e in enumerate(events) if e in ("leadership_released", "leadership_lost")]
        if taken and (not released or released[-1] < taken[-1]):
            found.append(index)
    return found


def advisory_holders(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as owner:
        row = owner.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    assert row is not None
    return int(row[0])


def events_of(database_url: str, tenant_id: str) -> dict[str, list[str]]:
    """The tenant's events in the log, by conversation, in log order."""
    by_conversation: dict[str, list[str]] = {}
    with psycopg.connect(database_url, autocommit=True) as owner:
        for event_id, conversation_id in owner.execute(
            "SELECT id, conversation_id FROM events WHERE tenant_id = %s ORDER BY tx_id, seq", (tenant_id,)
        ):
            by_conversation.setdefault(str(conversation_id), []).append(str(event_id))
    return by_conversation


async def churn(tenants: list[Client], alive: list[int], rounds: int) -> None:
    """Conversations created and moved back and forth, each call through the next live replica."""
    for n in range(rounds):
        client = tenants[alive[n % len(alive)]]
        created = await client.conversations.CreateConversation(
            cs.CreateConversationRequest(conversation=pb.Conversation(whatsapp_conversation_id=f"wa-{uuid.uuid4()}"))
        )
        for m, state in enumerate((WAITING, ACTIVE, WAITING)):
            mover = tenants[alive[(n + m + 1) % len(alive)]]
            await mover.conversations.TransitionConversation(
                cs.TransitionConversationRequest(conversation_id=created.conversation.id, state=state, reason="r")
            )


async def test_one_leader_failover_on_sigkill_and_every_event_once_on_every_replica(
    replicas: list[ServeProcess], clients: list[Clients], settings: Settings, database_url: str
) -> None:
    queue = AmqpQueue(settings.amqp_url, settings.amqp_exchange)
    await asyncio.to_thread(queue.declare)
    try:
        tenants = await as_tenant(clients)
        (leader,) = await leaders(replicas, within=3 * LEADER_POLL_SECONDS)  # exactly one, however long they run
        assert advisory_holders(database_url) == 1
        streams = [await Collector(tenant, request()).started() for tenant in tenants]
        survivors = [i for i in range(REPLICAS) if i != leader]

        await churn(tenants, list(range(REPLICAS)), 10)
        replicas[leader].kill()
        killed = time.monotonic()
        await churn(tenants, survivors, 10)  # writes go on meanwhile, through the survivors
        while not (new := await leaders([replicas[i] for i in survivors], within=0.05)):
            assert time.monotonic() - killed < 10, "no replica took over"
        takeover = time.monotonic() - killed
        assert len(new) == 1 and advisory_holders(database_url) == 1

        written = events_of(database_url, tenants[0].tenant_id)
        every = {i for ids in written.values() for i in ids}
        for index in survivors:
            await streams[index].wait_for(len(every), timeout=20)
            await asyncio.sleep(0.5)  # nothing more (no duplicate) arrives
            assert_exactly_once_in_order(streams[index].ids, written)
        dead = streams[leader].ids  # the killed replica's stream: what it got before, once each
        assert len(dead) == len(set(dead)) and set(dead) <= every
        assert not await asyncio.to_thread(queue.drain, every, 30.0), "events lost on the way to RabbitMQ"
        for stream in streams:
            await stream.stop()
    finally:
        await asyncio.to_thread(queue.delete)
    # The lock goes with the dead session at once; a survivor takes it at its next poll.
    assert takeover < LEADER_POLL_SECONDS + 5.0
    print(f"takeover {takeover:.2f} s after SIGKILL; {len(every)} events on every surviving replica once")


async def test_a_write_through_one_replica_is_never_read_stale_through_another(clients: list[Clients]) -> None:
    tenants = await as_tenant(clients)
    whatsapp_id = f"wa-{uuid.uuid4()}"
    created = await tenants[0].conversations.CreateConversation(
        cs.CreateConversationRequest(conversation=pb.Conversation(whatsapp_conversation_id=whatsapp_id))
    )
    conversation_id = created.conversation.id
    lookup = cs.LookupConversationRequest(whatsapp_conversation_id=whatsapp_id)
    stale = []
    for n in range(60):
        writer, reader = tenants[n % REPLICAS], tenants[(n + 1 + n // REPLICAS) % REPLICAS]
        await reader.conversations.LookupConversation(lookup)  # cached everywhere before the write
        metadata = struct_pb2.Struct()
        metadata.update({"round": n})
        await writer.conversations.UpdateConversation(
            cs.UpdateConversationRequest(
                conversation=pb.Conversation(id=conversation_id, metadata=metadata),
                update_mask={"paths": ["metadata"]},
            )
        )
        for client in (reader, writer):
            seen = (await client.conversations.LookupConversation(lookup)).conversation.metadata["round"]
            if seen != n:
                stale.append((n, seen))
    assert not stale, f"{len(stale)} stale reads after a write returned: {stale[:5]}"
