"""Seeded traffic for the analytics tests, recorded through the gRPC API, then spread over two weeks.

`play` drives conversations as the transformers and the portal would: customers (some return), conversations with
agents, inbound and outbound messages, transfers, waiting and back, closes, status reports out of order and
duplicated, failures with error codes, retries, reports parked before their message, and duplicate recordings.

It all happens within seconds, so `spread` then moves each conversation's times (rows and event payloads alike,
by one monotone function per conversation) to a random point in two weeks around the end of European and American
daylight-saving time, and pushes the second half of some conversations a day later (replies after the 24-hour
window, long durations). Customers' creation times move by their own offset. It runs before the rollup consumer
folds anything, as the owner of the test database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import uuid
from typing import Any

import psycopg

from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_pb2
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import message_pb2 as mpb
from statemgr.v1 import message_service_pb2 as ms
from tests.integration.conftest import Client

ANCHOR = dt.datetime(2026, 10, 20, 0, 0, tzinfo=dt.UTC)  # Europe leaves DST on Oct 25, the US on Nov 1
SPAN = dt.timedelta(days=14)
STATUSES = [mpb.MESSAGE_STATUS_SENT, mpb.MESSAGE_STATUS_DELIVERED, mpb.MESSAGE_STATUS_READ, mpb.MESSAGE_STATUS_FAILED]


@dataclasses.dataclass
class Played:
    conversation_ids: list[str]
    customer_ids: list[str]
    agents: list[str]


async def play(client: Client, seed: int, conversations: int = 200, concurrency: int = 16) -> Played:
    rng = random.Random(seed)
    agents = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(6)]
    customers = []
    for i in range(max(2, conversations // 3)):
        customer = customer_pb2.Customer(whatsapp_id=f"4475{seed % 1000:03d}{i:05d}")
        customers.append(
            (await client.customers.UpsertCustomer(cus.UpsertCustomerRequest(customer=customer))).customer.id
        )
    scripts = [random.Random(rng.getrandbits(64)) for _ in range(conversations)]
    gate = asyncio.Semaphore(concurrency)

    async def one(script: random.Random) -> str:
        async with gate:
            return await _conversation(client, script, rng.choice(customers), agents)

    ids = await asyncio.gather(*(one(s) for s in scripts))
    return Played(list(ids), customers, agents)


async def _conversation(client: Client, rng: random.Random, customer_id: str, agents: list[str]) -> str:
    conversation = cpb.Conversation(
        whatsapp_conversation_id="wa-" + uuid.uuid4().hex, customer_id=customer_id, agent_id=rng.choice(agents)
    )
    created = await client.conversations.CreateConversation(cs.CreateConversationRequest(conversation=conversation))
    cid, state = created.conversation.id, cpb.CONVERSATION_STATE_ACTIVE
    outbound: list[str] = []
    for _ in range(rng.randint(2, 12)):
        roll = rng.random()
        if roll < 0.33:
            await _record(client, cid, mpb.MESSAGE_DIRECTION_INBOUND, rng)
        elif roll < 0.6:
            outbound.append(await _record(client, cid, mpb.MESSAGE_DIRECTION_OUTBOUND, rng))
        elif roll < 0.68:
            await client.conversations.TransferConversation(
                cs.TransferConversationRequest(conversation_id=cid, agent_id=rng.choice(agents), reason="load")
            )
        elif roll < 0.76:
            state = (
                cpb.CONVERSATION_STATE_WAITING
                if state == cpb.CONVERSATION_STATE_ACTIVE
                else cpb.CONVERSATION_STATE_ACTIVE
            )
            await client.conversations.TransitionConversation(
                cs.TransitionConversationRequest(conversation_id=cid, state=state)
            )
        elif roll < 0.8:
            outbound.append(await _parked_first(client, cid, rng))
        elif outbound:
            await _reports(client, rng.choice(outbound), rng)
    if rng.random() < 0.7:
        await client.conversations.CloseConversation(cs.CloseConversationRequest(conversation_id=cid))
    return cid


async def _record(client: Client, cid: str, direction: int, rng: random.Random, key: str = "") -> str:
    key = key or "wamid." + uuid.uuid4().hex
    message = mpb.Message(conversation_id=cid, direction=direction, content="hi", whatsapp_message_id=key)
    request = ms.RecordMessageRequest(message=message)
    await client.messages.RecordMessage(request)
    if rng.random() < 0.1:  # the webhook again: the same message, not a second one
        await client.messages.RecordMessage(request)
    return key


async def _parked_first(client: Client, cid: str, rng: random.Random) -> str:
    """A delivery report that arrives before its message is recorded."""
    key = "wamid." + uuid.uuid4().hex
    await client.messages.UpdateMessageStatus(_report(key, mpb.MESSAGE_STATUS_DELIVERED, rng))
    return await _record(client, cid, mpb.MESSAGE_DIRECTION_OUTBOUND, rng, key)


async def _reports(client: Client, key: str, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 3)):
        request = _report(key, rng.choice(STATUSES), rng)
        await client.messages.UpdateMessageStatus(request)
        if rng.random() < 0.2:
            await client.messages.UpdateMessageStatus(request)  # duplicated webhook
    if rng.random() < 0.3:
        message = (await client.messages.LookupMessage(ms.LookupMessageRequest(whatsapp_message_id=key))).message
        if message.status == mpb.MESSAGE_STATUS_FAILED:
            await client.messages.RetryMessage(ms.RetryMessageRequest(message_id=message.id))


def _report(key: str, status: int, rng: random.Random) -> ms.UpdateMessageStatusRequest:
    request = ms.UpdateMessageStatusRequest(whatsapp_message_id=key, status=status)
    # Provider time: a few seconds to hours around now, whole seconds (as WhatsApp sends them).
    request.status_time.FromDatetime(
        dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=rng.randint(-5, 7200))
    )
    if status == mpb.MESSAGE_STATUS_FAILED:
        request.error_code = rng.choice(["131047", "131026", "130472", ""])
    return request


_SPREAD = """
CREATE TEMP TABLE shift (conversation_id uuid PRIMARY KEY, base interval, cut timestamptz);
CREATE TEMP TABLE customer_shift (customer_id uuid PRIMARY KEY, base interval);
"""

_APPLY = [
    # f(t) = t + base (+ 25 hours from the cut on): one monotone function per conversation
    """CREATE FUNCTION pg_temp.f(t timestamptz, c uuid) RETURNS timestamptz LANGUAGE sql AS $$
        SELECT t + s.base + CASE WHEN s.cut IS NOT NULL AND t >= s.cut THEN interval '25 hours' ELSE '0' END
        FROM pg_temp.shift s WHERE s.conversation_id = c $$""",
    """UPDATE conversations SET created_at = pg_temp.f(created_at, id), closed_at = pg_temp.f(closed_at, id),
              last_activity = pg_temp.f(last_activity, id) WHERE tenant_id = %(t)s""",
    """UPDATE conversation_assignments SET assigned_at = pg_temp.f(assigned_at, conversation_id)
       WHERE tenant_id = %(t)s""",
    """UPDATE conversation_state_transitions SET changed_at = pg_temp.f(changed_at, conversation_id)
       WHERE tenant_id = %(t)s""",
    """UPDATE messages SET created_at = pg_temp.f(created_at, conversation_id),
              sent_at = pg_temp.f(sent_at, conversation_id), delivered_at = pg_temp.f(delivered_at, conversation_id),
              read_at = pg_temp.f(read_at, conversation_id), failed_at = pg_temp.f(failed_at, conversation_id)
       WHERE tenant_id = %(t)s""",
    """UPDATE customers c SET created_at = c.created_at + s.base FROM pg_temp.customer_shift s
       WHERE c.tenant_id = %(t)s AND c.id = s.customer_id""",
    """UPDATE events e SET payload = jsonb_strip_nulls(e.payload
           || jsonb_build_object('at', pg_temp.f((e.payload->>'at')::timestamptz, e.conversation_id))
           || jsonb_build_object('delivered_at',
                  pg_temp.f((e.payload->>'delivered_at')::timestamptz, e.conversation_id))
           || jsonb_build_object('read_at', pg_temp.f((e.payload->>'read_at')::timestamptz, e.conversation_id)))
       WHERE e.tenant_id = %(t)s AND e.conversation_id IS NOT NULL""",
    """UPDATE events e SET payload = e.payload || jsonb_build_object('at', (e.payload->>'at')::timestamptz + s.base)
       FROM pg_temp.customer_shift s
       WHERE e.tenant_id = %(t)s AND e.conversation_id IS NULL AND e.type = 'customer.created'
         AND s.customer_id = (e.payload->>'customer_id')::uuid""",
]


def spread(database_url: str, tenant_id: str, played: Played, seed: int) -> None:
    """Moves the tenant's times as the module docstring says (as the database owner, before any folding)."""
    rng = random.Random(seed)
    with psycopg.connect(database_url, autocommit=False) as conn:
        conn.execute(_SPREAD)
        earliest: dict[str, dt.timedelta] = {}
        for cid in played.conversation_ids:
            cut = _cut(conn, cid, rng) if rng.random() < 0.15 else None
            offset = ANCHOR - dt.datetime.now(dt.UTC) + dt.timedelta(seconds=rng.randrange(int(SPAN.total_seconds())))
            conn.execute("INSERT INTO pg_temp.shift VALUES (%s, %s, %s)", (cid, offset, cut))
            customer = str(conn.execute("SELECT customer_id FROM conversations WHERE id = %s", (cid,)).fetchone()[0])  # type: ignore[index]
            earliest[customer] = min(offset, earliest.get(customer, offset))
        for customer in played.customer_ids:
            # A customer is created before their first conversation, as in life (up to three days before it).
            latest = earliest.get(customer, ANCHOR + SPAN - dt.datetime.now(dt.UTC))
            offset = latest - dt.timedelta(seconds=rng.randrange(3 * 86_400))
            conn.execute("INSERT INTO pg_temp.customer_shift VALUES (%s, %s)", (customer, offset))
        for statement in _APPLY:
            conn.execute(statement, {"t": tenant_id})  # type: ignore[arg-type]
        conn.commit()


def _cut(conn: psycopg.Connection[Any], cid: str, rng: random.Random) -> dt.datetime | None:
    times = [
        r[0] for r in conn.execute("SELECT created_at FROM messages WHERE conversation_id = %s ORDER BY 1", (cid,))
    ]
    return rng.choice(times) if times else None
