"""IntegrationService end to end: the transformers' one-call resolutions, including their races."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import grpc
import prometheus_client
import psycopg
from google.protobuf import field_mask_pb2

from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import integration_service_pb2 as ins
from statemgr.v1 import message_pb2 as pb
from statemgr.v1 import message_service_pb2 as ms
from tests.integration import faults
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.test_conversations import CLOSED, create, move
from tests.integration.test_customers import SyncConn, inbound, new_wa_id, rows, timestamp, violation

BAD = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def general_paths(rpc: str, reason: str) -> float:
    """How many calls of `rpc` this process sent to the general path for `reason` (statemgr_general_path_total)."""
    labels = {"rpc": rpc, "reason": reason}
    return prometheus_client.REGISTRY.get_sample_value("statemgr_general_path_total", labels) or 0.0


def counts(app_conn: SyncConn, tenant_id: str) -> tuple[int, int, int]:
    """How many customers, conversations and messages the tenant has."""
    query = (
        "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)"
    )
    ((customers, conversations, messages),) = rows(app_conn, tenant_id, query)
    return customers, conversations, messages


def writers(app_conn: SyncConn, tenant_id: str, resolved: ins.ResolveInboundResponse) -> set[str]:
    """The transactions that last wrote the customer, the conversation and the message of a resolution (xmin)."""
    query = """SELECT (SELECT xmin::text FROM customers WHERE id = %(customer)s),
                      (SELECT xmin::text FROM conversations WHERE id = %(conversation)s),
                      (SELECT xmin::text FROM messages WHERE id = %(message)s)"""
    ids = {"customer": resolved.context.customer.id, "conversation": resolved.conversation.id}
    ((customer, conversation, message),) = rows(app_conn, tenant_id, query, {**ids, "message": resolved.message.id})
    return {customer, conversation, message}


async def outbound(client: Client, genesys_conversation_id: str, **fields: Any) -> ins.ResolveOutboundResponse:
    request = ins.ResolveOutboundRequest(
        genesys_conversation_id=genesys_conversation_id,
        genesys_message_id=fields.pop("genesys_message_id", "gm-" + uuid.uuid4().hex),
        **fields,
    )
    return await client.integration.ResolveOutbound(request)


async def test_20_concurrent_first_messages_make_one_customer_one_conversation_20_messages(
    tenant: Client, app_conn: SyncConn
) -> None:
    wa = new_wa_id()
    results = await asyncio.gather(
        *(inbound(tenant, wa, content=f"part {i}", customer_name="New Customer") for i in range(20))
    )
    assert sum(r.customer_created for r in results) == 1
    assert sum(r.conversation_created for r in results) == 1
    assert all(r.message_created for r in results)
    assert len({r.context.customer.id for r in results}) == 1
    assert len({r.conversation.id for r in results}) == 1
    assert counts(app_conn, tenant.tenant_id) == (1, 1, 20)


async def test_inbound_upserts_the_customer_and_opens_the_reply_window(clients: Clients) -> None:
    client = await clients.new_tenant(region="GB")
    sent = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    first = await inbound(
        client, "wa-ann", phone_number="07400 123456", customer_name="Ann", content="hi", send_time=timestamp(sent)
    )
    assert first.customer_created and first.conversation_created and first.message_created
    assert first.context.customer.phone_number == "+447400123456"
    assert first.conversation.whatsapp_conversation_id == "wa-ann"  # the WhatsApp id by default
    assert first.conversation.customer_id == first.context.customer.id
    assert first.conversation.reply_window_expire_time.ToDatetime(dt.UTC) == sent + dt.timedelta(hours=24)
    assert first.context.reply_window_open and first.context.open_conversation == first.conversation
    assert [m.id for m in first.context.recent_messages] == [first.message.id]
    assert first.message.direction == pb.MESSAGE_DIRECTION_INBOUND and first.message.status == pb.MESSAGE_STATUS_SENT
    renamed = await inbound(client, "wa-ann", customer_name="Ann B.")
    assert not renamed.customer_created and not renamed.conversation_created
    assert renamed.context.customer.name == "Ann B." and renamed.context.customer.phone_number == "+447400123456"
    assert [m.id for m in renamed.context.recent_messages] == [first.message.id, renamed.message.id]


async def test_a_duplicate_webhook_returns_the_first_record(tenant: Client) -> None:
    wa, wamid = new_wa_id(), "wamid." + uuid.uuid4().hex
    same: dict[str, Any] = {"content": "hello", "media_urls": ["https://cdn.test/1.jpg"]}
    first = await inbound(tenant, wa, wamid, **same)
    before = general_paths("ResolveInbound", "repeated_message")
    again = await inbound(tenant, wa, wamid, **same)
    assert general_paths("ResolveInbound", "repeated_message") == before + 1
    assert not (again.customer_created or again.conversation_created or again.message_created)
    assert again.message == first.message and again.conversation.id == first.conversation.id
    refused = inbound(tenant, wa, wamid, content="changed", customer_name="Renamed")
    await expect(refused, grpc.StatusCode.ALREADY_EXISTS)
    assert not (await inbound(tenant, wa, wamid, **same)).context.customer.name  # the refused call wrote nothing
    await move(tenant, first.conversation.id, CLOSED)
    late = await inbound(tenant, wa, wamid, **same)
    assert not late.conversation_created and late.conversation.id == first.conversation.id  # no new conversation


async def test_a_message_after_closure_opens_a_new_conversation(tenant: Client) -> None:
    wa = new_wa_id()
    first = await inbound(tenant, wa)
    await move(tenant, first.conversation.id, CLOSED)
    second = await inbound(tenant, wa)
    assert second.conversation_created and second.conversation.id != first.conversation.id
    assert second.context.open_conversation.id == second.conversation.id
    assert [c.id for c in second.context.recent_conversations] == [second.conversation.id, first.conversation.id]
    third = await inbound(tenant, wa, whatsapp_conversation_id="thread-2")
    assert third.conversation_created and third.conversation.whatsapp_conversation_id == "thread-2"


async def test_inbound_claims_a_conversation_opened_without_a_customer(tenant: Client) -> None:
    wa = new_wa_id()
    opened = await create(tenant, wa)
    assert not opened.customer_id
    resolved = await inbound(tenant, wa)
    assert not resolved.conversation_created and resolved.conversation.id == opened.id
    assert resolved.conversation.customer_id == resolved.context.customer.id


async def test_a_status_parked_before_the_first_message_is_applied_to_it(tenant: Client, app_conn: SyncConn) -> None:
    # The report is applied before the one transaction commits: every row it wrote, and every event, once.
    wa, wamid = new_wa_id(), "wamid." + uuid.uuid4().hex
    report = ms.UpdateMessageStatusRequest(whatsapp_message_id=wamid, status=pb.MESSAGE_STATUS_DELIVERED)
    assert (await tenant.messages.UpdateMessageStatus(report)).parked
    before = general_paths("ResolveInbound", "parked_reports")
    resolved = await inbound(tenant, wa, wamid, customer_name="New Customer")
    assert general_paths("ResolveInbound", "parked_reports") == before + 1
    assert resolved.customer_created and resolved.conversation_created and resolved.message_created
    assert resolved.message.status == pb.MESSAGE_STATUS_DELIVERED
    events = rows(app_conn, tenant.tenant_id, "SELECT type, count(*) FROM events GROUP BY type ORDER BY type")
    assert dict(events) == {
        "conversation.created": 1,
        "customer.created": 1,
        "message.recorded": 1,
        "message.status_changed": 1,
    }
    assert len(writers(app_conn, tenant.tenant_id, resolved)) == 1, "one transaction wrote it all"


async def test_inbound_events_say_what_changed_in_order(tenant: Client, app_conn: SyncConn) -> None:
    wa = new_wa_id()
    first = await inbound(tenant, wa, customer_name="Ann")
    second = await inbound(tenant, wa, customer_name="Ann B.")
    events = rows(app_conn, tenant.tenant_id, "SELECT type, payload FROM events ORDER BY tx_id, seq")
    customer, conversation = first.context.customer.id, first.conversation.id
    assert all("at" in payload for _, payload in events)  # when it happened, for analytics (statemgr.analytics)
    assert [payload.pop("direction") for kind, payload in events if kind == "message.recorded"] == ["inbound"] * 2
    events = [(kind, {k: v for k, v in payload.items() if k != "at"}) for kind, payload in events]
    assert events == [
        ("customer.created", {"customer_id": customer}),
        (
            "conversation.created",
            {"conversation_id": conversation, "customer_id": customer, "conversation_state": "active"},
        ),
        (
            "message.recorded",
            {"conversation_id": conversation, "message_id": first.message.id, "message_status": "sent"},
        ),
        ("customer.updated", {"customer_id": customer}),
        (
            "message.recorded",
            {"conversation_id": conversation, "message_id": second.message.id, "message_status": "sent"},
        ),
    ]


async def test_an_invalid_phone_number_writes_nothing(tenant: Client, app_conn: SyncConn) -> None:
    refused = await expect(inbound(tenant, new_wa_id(), phone_number="+44 20 79"), BAD, "phone_number")
    assert violation(refused) == ("phone_number", "missing its area code")
    assert rows(app_conn, tenant.tenant_id, "SELECT count(*) FROM customers") == [(0,)]
    assert rows(app_conn, tenant.tenant_id, "SELECT count(*) FROM events") == [(0,)]


async def test_outbound_resolves_current_and_superseded_genesys_ids(tenant: Client) -> None:
    wa = new_wa_id()
    first = await inbound(tenant, wa)
    mapped = cpb.Conversation(id=first.conversation.id, genesys_conversation_id="gc-1")
    mask = field_mask_pb2.FieldMask(paths=["genesys_conversation_id"])
    await tenant.conversations.UpdateConversation(cs.UpdateConversationRequest(conversation=mapped, update_mask=mask))
    reply = await outbound(tenant, "gc-1", genesys_message_id="gm-1", content="How can I help?")
    assert (reply.whatsapp_id, reply.phone_number) == (wa, "+" + wa)
    assert reply.reply_window_open and reply.message_created and reply.conversation.id == first.conversation.id
    assert (
        reply.message.direction == pb.MESSAGE_DIRECTION_OUTBOUND and reply.message.status == pb.MESSAGE_STATUS_PENDING
    )
    mapped.genesys_conversation_id = "gc-2"
    await tenant.conversations.UpdateConversation(cs.UpdateConversationRequest(conversation=mapped, update_mask=mask))
    via_old = await outbound(tenant, "gc-1", genesys_message_id="gm-2", content="Still there?")
    assert via_old.conversation.id == first.conversation.id and via_old.message_created
    assert list(via_old.conversation.previous_genesys_conversation_ids) == ["gc-1"]
    again = await outbound(tenant, "gc-2", genesys_message_id="gm-1", content="How can I help?")
    assert not again.message_created and again.message == reply.message
    await expect(outbound(tenant, "gc-2", genesys_message_id="gm-1", content="edited"), grpc.StatusCode.ALREADY_EXISTS)
    await expect(outbound(tenant, "gc-unknown"), NOT_FOUND)


async def test_outbound_says_when_the_reply_window_is_closed(tenant: Client) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
    first = await inbound(tenant, new_wa_id(), send_time=timestamp(old))
    assert not first.context.reply_window_open
    conversation = cpb.Conversation(id=first.conversation.id, genesys_conversation_id="gc-late")
    mask = field_mask_pb2.FieldMask(paths=["genesys_conversation_id"])
    await tenant.conversations.UpdateConversation(
        cs.UpdateConversationRequest(conversation=conversation, update_mask=mask)
    )
    assert not (await outbound(tenant, "gc-late")).reply_window_open


async def test_bad_input_names_the_field(tenant: Client) -> None:
    i = tenant.integration
    cases: list[tuple[Any, str]] = [
        (i.ResolveInbound(ins.ResolveInboundRequest(whatsapp_message_id="w")), "whatsapp_id"),
        (i.ResolveInbound(ins.ResolveInboundRequest(whatsapp_id="1")), "whatsapp_message_id"),
        (inbound(tenant, "1", customer_name="n" * 201), "customer_name"),
        (inbound(tenant, "1", whatsapp_conversation_id="c" * 257), "whatsapp_conversation_id"),
        (inbound(tenant, "1", content="x" * 70_000), "content"),
        (inbound(tenant, "1", media_urls=[""]), "media_urls[0]"),
        (i.ResolveOutbound(ins.ResolveOutboundRequest(genesys_message_id="m")), "genesys_conversation_id"),
        (i.ResolveOutbound(ins.ResolveOutboundRequest(genesys_conversation_id="c")), "genesys_message_id"),
        (outbound(tenant, "c", media_urls=["u"] * 21), "media_urls"),
    ]
    for call, field in cases:
        await expect(call, BAD, field)
    lookup = tenant.customers.LookupCustomer(cus.LookupCustomerRequest(whatsapp_id="1"))
    await expect(lookup, NOT_FOUND)


async def test_a_message_racing_the_closure_lands_in_the_closed_or_a_new_conversation(tenant: Client) -> None:
    """Never FAILED_PRECONDITION: a conversation closed between ResolveInbound's lookup and its write makes way."""
    for _ in range(15):
        wa = new_wa_id()
        first = await inbound(tenant, wa)
        closing = move(tenant, first.conversation.id, CLOSED)
        racing = [inbound(tenant, wa) for _ in range(3)]
        closed, *resolved = await asyncio.gather(closing, *racing)
        assert closed.state == CLOSED
        for result in resolved:
            assert result.message_created
            if result.conversation.id != first.conversation.id:
                assert result.conversation.state == cpb.CONVERSATION_STATE_ACTIVE


async def test_a_conversation_opened_meanwhile_restarts_the_resolution_whole(
    tenant: Client, app_conn: SyncConn, database_url: str
) -> None:
    """Another writer opens a conversation for the WhatsApp id between ResolveInbound's two round trips: the open
    fails on conversations_one_open, the attempt rolls back whole, and the next one records in (and claims) the
    conversation the other opened. One customer, one conversation, one message, each event once, one transaction."""
    wa, taken = new_wa_id(), str(uuid.uuid4())
    before = general_paths("ResolveInbound", "conversation_taken")
    with psycopg.connect(database_url) as other:  # a transaction held open across the call's first round trip
        other.execute("SET ROLE statemgr_app")
        other.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant.tenant_id,))
        other.execute(
            "INSERT INTO conversations (tenant_id, id, whatsapp_conversation_id) VALUES (%s, %s, %s)",
            (tenant.tenant_id, taken, wa),
        )
        resolving = asyncio.create_task(inbound(tenant, wa, customer_name="New Customer"))
        await _until_waiting_on_a_lock(database_url, "INSERT INTO conversations")
        other.commit()
    resolved = await resolving
    assert general_paths("ResolveInbound", "conversation_taken") == before + 1
    assert resolved.conversation.id == taken and not resolved.conversation_created
    assert resolved.customer_created and resolved.message_created
    assert resolved.conversation.customer_id == resolved.context.customer.id  # claimed
    assert counts(app_conn, tenant.tenant_id) == (1, 1, 1)
    events = rows(app_conn, tenant.tenant_id, "SELECT type, count(*) FROM events GROUP BY type ORDER BY type")
    assert dict(events) == {"customer.created": 1, "message.recorded": 1}
    assert len(writers(app_conn, tenant.tenant_id, resolved)) == 1, "one transaction wrote it all"


async def _until_waiting_on_a_lock(database_url: str, statement: str, bound: float = 10.0) -> None:
    """Waits until a backend running `statement` waits for a lock (the server's call, blocked by the test)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s"
    with psycopg.connect(database_url, autocommit=True) as conn:

        def waiting() -> bool:
            row = conn.execute(query, (f"%{statement}%",)).fetchone()
            return row is not None and row[0] > 0

        await faults.until(waiting, bound, f"a backend running {statement!r} waiting on a lock")
