"""The rollup consumer prunes its own state (outbound messages' funnel facts, customer numbers) past its bounds, in
its own loop and in bounded steps: the rows go, the figures stay, and what comes after behaves as docs/analytics.md
says (a late report for a pruned message moves nothing; a customer whose number was pruned gets a new one).

The server runs with the consumer switched off; the tests drive one on a connection of their own (test_analytics).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from statemgr.analytics.consumer import Pruning, RollupConsumer
from statemgr.config import Settings
from statemgr.v1 import analytics_service_pb2 as apb
from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import message_pb2 as mpb
from statemgr.v1 import message_service_pb2 as ms
from tests.integration import analytics_traffic as traffic
from tests.integration.conftest import Client, Clients
from tests.integration.test_analytics import (
    RANGES,
    SEED,
    all_figures,
    analytics,
    check_metrics,
    fold_all,
    leader_connection,
    period,
)

pytestmark = pytest.mark.timeout(300)
Conn = psycopg.AsyncConnection[dict[str, Any]]
CUT = traffic.ANCHOR + dt.timedelta(days=7)  # state older than this (in event time) is pruned: about half


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, analytics_enabled=False)


@pytest.fixture
async def relay_conn(database_url: str) -> AsyncIterator[Conn]:
    conn = await leader_connection(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[Conn]:
    """The database owner: reads the raw tables and the consumer's state whatever the tenant."""
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row)
    yield conn
    await conn.close()


async def rows(conn: Conn, query: str, *params: Any) -> list[dict[str, Any]]:
    return await (await conn.execute(query, params)).fetchall()  # type: ignore[arg-type]


async def state(conn: Conn, tenant_id: str) -> tuple[dict[uuid.UUID, dt.datetime], dict[uuid.UUID, dt.datetime]]:
    """The consumer's message and customer-number rows of the tenant: id -> recorded_at / last_seen."""
    messages = await rows(
        conn, "SELECT message_id, recorded_at FROM analytics_messages WHERE tenant_id = %s", tenant_id
    )
    numbers = await rows(
        conn, "SELECT customer_id, last_seen FROM analytics_customer_numbers WHERE tenant_id = %s", tenant_id
    )
    return (
        {r["message_id"]: r["recorded_at"] for r in messages},
        {r["customer_id"]: r["last_seen"] for r in numbers},
    )


async def prune_with_the_consumer_loop(database_url: str, tenant_id: str, pruning: Pruning, owner: Conn) -> None:
    """Runs the consumer as the leader does until the tenant's state older than CUT is gone."""
    conn = await leader_connection(database_url)
    task = asyncio.create_task(RollupConsumer(poll_seconds=0.01, pruning=pruning).run(conn))
    try:
        async with asyncio.timeout(60):
            while True:
                messages, numbers = await state(owner, tenant_id)
                if min([*messages.values(), *numbers.values()]) >= CUT:
                    break
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await conn.close()


async def read_count(client: Client) -> int:
    whole = period(*RANGES[0])
    metrics = await analytics(client).GetConversationMetrics(apb.GetConversationMetricsRequest(range=whole))
    return metrics.delivery.read


async def unread(owner: Conn, ids: list[uuid.UUID]) -> str:
    found = await rows(
        owner,
        "SELECT whatsapp_message_id FROM messages WHERE id = ANY(%s) AND status IN ('sent', 'delivered') LIMIT 1",
        ids,
    )
    assert found, "the traffic leaves some outbound messages unread on each side of CUT"
    return str(found[0]["whatsapp_message_id"])


async def test_state_past_the_bounds_is_pruned_and_the_figures_stay(
    clients: Clients, database_url: str, relay_conn: Conn, owner: Conn
) -> None:
    tenant = await clients.new_tenant("Pruning")
    played = await traffic.play(tenant, SEED + 5, conversations=80)
    traffic.spread(database_url, tenant.tenant_id, played, SEED + 5)
    await fold_all(relay_conn)
    before = await all_figures(tenant)
    messages, numbers = await state(owner, tenant.tenant_id)
    old_messages = [m for m, at in messages.items() if at < CUT]
    old_customers = [c for c, at in numbers.items() if at < CUT]
    assert 0 < len(old_messages) < len(messages) and 0 < len(old_customers) < len(numbers)

    (cursor,) = await rows(owner, "SELECT folded_at FROM analytics_cursors WHERE tenant_id = %s", tenant.tenant_id)
    bound = cursor["folded_at"] - CUT  # the bounds are measured back from the latest event time folded
    await prune_with_the_consumer_loop(database_url, tenant.tenant_id, Pruning(bound, 3600.0, 7, bound), owner)

    left_messages, left_numbers = await state(owner, tenant.tenant_id)
    assert left_messages == {m: at for m, at in messages.items() if at >= CUT}  # in batches of 7, exactly these
    assert left_numbers == {c: at for c, at in numbers.items() if at >= CUT}
    assert await all_figures(tenant) == before  # pruning is of the consumer's state, never of the figures
    await check_metrics(tenant, database_url, *RANGES[0])

    # A late read report: for a pruned message it moves nothing (the message is no longer known to the consumer);
    # for a message still known, the read count takes it.
    reads = await read_count(tenant)
    rng = random.Random(SEED)
    for key in (await unread(owner, old_messages), await unread(owner, list(left_messages))):
        await tenant.messages.UpdateMessageStatus(traffic._report(key, mpb.MESSAGE_STATUS_READ, rng))
    await fold_all(relay_conn)
    assert await read_count(tenant) == reads + 1

    # A customer whose number was pruned comes back: a new number, counted once, as a returning customer.
    (next_number,) = await rows(
        owner, "SELECT next_customer FROM analytics_cursors WHERE tenant_id = %s", tenant.tenant_id
    )
    customer_id = str(old_customers[0])
    await write_again(tenant, customer_id)
    await fold_all(relay_conn)
    (row,) = await rows(owner, "SELECT number FROM analytics_customer_numbers WHERE customer_id = %s", customer_id)
    assert row["number"] == next_number["next_customer"]
    now = dt.datetime.now(dt.UTC)
    recent = apb.GetCustomerEngagementRequest(range=period(now - dt.timedelta(hours=2), now + dt.timedelta(hours=1)))
    engagement = await analytics(tenant).GetCustomerEngagement(recent)
    assert (engagement.active_customers, engagement.new_customers, engagement.returning_customers) == (1, 0, 1)


async def write_again(client: Client, customer_id: str) -> None:
    conversation = cpb.Conversation(whatsapp_conversation_id="wa-" + uuid.uuid4().hex, customer_id=customer_id)
    created = await client.conversations.CreateConversation(cs.CreateConversationRequest(conversation=conversation))
    message = mpb.Message(
        conversation_id=created.conversation.id,
        direction=mpb.MESSAGE_DIRECTION_INBOUND,
        content="back again",
        whatsapp_message_id="wamid." + uuid.uuid4().hex,
    )
    await client.messages.RecordMessage(ms.RecordMessageRequest(message=message))
