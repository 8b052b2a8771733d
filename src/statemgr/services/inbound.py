"""ResolveInbound's usual case in two round trips (services.integration holds the whole rule and the general path).

The first, with BEGIN: the customer upserted (which locks its row), the message id locked and looked for, whether
reports are parked for it, and the WhatsApp conversation's open (else latest) conversation, locked. The second, with
COMMIT: the customer's event if the upsert changed it, a new conversation if none is open (with its event), the
conversation touched, the message recorded with its event if the conversation is open, and the customer's context.

Anything unusual is left to the general path, in a transaction of its own, after this one has committed what it
did (at most the customer's upsert and its event): a message seen before, reports parked for it, an open
conversation without a customer, or no open conversation at the second round trip (another caller's conversation
took the WhatsApp conversation id first).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from statemgr import metrics
from statemgr.domain import customers as customer_domain
from statemgr.domain import messages as message_domain
from statemgr.domain.conversations import Conversation, NewConversation, State
from statemgr.domain.messages import Direction, KeyKind, MessageKey, Status
from statemgr.events import outbox
from statemgr.services import conversations, customers, messages
from statemgr.store import customers as customer_store
from statemgr.store import integration as store
from statemgr.store.customers import Upserted
from statemgr.store.db import Database, Pipelined

CONTEXT_LIMITS = (customers.RECENT_CONVERSATIONS[0], customers.RECENT_MESSAGES[0])


@dataclasses.dataclass(frozen=True, slots=True)
class Inbound:
    """An inbound WhatsApp message as the transformer knows it (checked; phone_number still raw)."""

    whatsapp_id: str
    phone_number: str | None
    customer_name: str | None
    whatsapp_conversation_id: str
    whatsapp_message_id: str
    content: str
    media_urls: list[str]
    sent_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class InboundResult:
    context: customer_domain.Context
    conversation: Conversation
    message: message_domain.Message
    customer_created: bool
    conversation_created: bool
    message_created: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """What the fast path committed: the customer's upsert, and the result unless the general path is to finish."""

    upserted: Upserted
    result: InboundResult | None


async def resolve_fast(db: Database, tenant_id: uuid.UUID, inbound: Inbound) -> Attempt:
    key = MessageKey(KeyKind.WHATSAPP, inbound.whatsapp_message_id)
    async with db.pipelined(tenant_id) as transaction:
        conn = transaction.conn
        given = customer_domain.CustomerInput(inbound.whatsapp_id, inbound.phone_number, inbound.customer_name)
        given, default_phone = await customers.upsert_input(conn, tenant_id, given, "phone_number")
        upserting = await customer_store.queue_upsert(conn, tenant_id, given, default_phone)
        reads = await store.queue_inbound_reads(conn, tenant_id, key, inbound.whatsapp_conversation_id)
        upserted = await customer_store.upserted(upserting)  # the first round trip
        existing, parked, found = await store.inbound_reads(reads)
        if existing:  # a repeat with other content is refused here, before anything commits
            messages.repeat_of(existing, inbound_message(inbound, existing[0].conversation_id))
        event = customers.upsert_event(upserted)
        if event is not None:
            await outbox.append(conn, tenant_id, event)
        reason = _unusual(existing, parked, found)
        result = None if reason else await _record(transaction, tenant_id, inbound, upserted, found)
    if result is None:
        metrics.GENERAL_PATH.labels("ResolveInbound", reason or "conversation_taken").inc()
    return Attempt(upserted, result)


def _unusual(existing: list[message_domain.Message], parked: bool, found: Conversation | None) -> str:
    """Why the general path must finish the resolution ("" when nothing is unusual)."""
    if existing:
        return "repeated_message"
    if parked:
        return "parked_reports"
    if found is not None and found.state is not State.CLOSED and found.customer_id is None:
        return "conversation_to_claim"
    return ""


async def _record(
    transaction: Pipelined, tenant_id: uuid.UUID, inbound: Inbound, upserted: Upserted, found: Conversation | None
) -> InboundResult | None:
    """The second round trip; None when the conversation was not open by then (nothing recorded)."""
    conn, customer = transaction.conn, upserted.customer
    opened = found is None or found.state is State.CLOSED
    if found is not None and not opened:
        conversation_id = found.id
    else:
        new_conversation = NewConversation(inbound.whatsapp_conversation_id, customer_id=customer.id)
        query, params = conversations.insert_statement(tenant_id, new_conversation)
        conversation_id = params["id"]
        await conn.execute(query, params)  # no row if another took the WhatsApp id: then the touch finds none
    recording = await messages.queue_recording(conn, tenant_id, inbound_message(inbound, conversation_id))
    reading = await customer_store.queue_recent(
        conn, tenant_id, customer.id, CONTEXT_LIMITS[0], conversation_id, CONTEXT_LIMITS[1]
    )
    await transaction.commit()  # the second round trip
    recorded = await messages.recording_read(recording)
    if recorded is None:
        return None
    conversation, message = recorded
    recent, last = await customer_store.recent_from(reading)
    context = customer_domain.Context(customer, conversation, recent, last)
    return InboundResult(context, conversation, message, upserted.created, opened, True)


def inbound_message(inbound: Inbound, conversation_id: uuid.UUID) -> message_domain.NewMessage:
    return message_domain.NewMessage(
        conversation_id=conversation_id,
        direction=Direction.INBOUND,
        whatsapp_message_id=inbound.whatsapp_message_id,
        genesys_message_id=None,
        status=Status.SENT,
        content=inbound.content,
        media_urls=inbound.media_urls,
        sent_at=inbound.sent_at,
    )
