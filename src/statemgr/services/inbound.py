"""ResolveInbound: every inbound case in ONE path and ONE transaction, in two round trips when nothing is unusual.

The first round trip, with BEGIN: the customer upserted (which locks its row), the message id locked and looked
for, whether reports are parked for it, and the WhatsApp conversation's open (else latest) conversation, locked.
What it finds decides the rest, which goes with COMMIT in the second round trip:

- the message id recorded before (a webhook delivered again): the first record, read with its conversation and the
  customer's context; ALREADY_EXISTS, with nothing committed, when the content differs;
- else the conversation to record in: the open one (given to the customer if it was opened without one), or a new
  one when none is open (the first message, or one after the closure); the conversation touched (activity, reply
  window), the message inserted with its event, the customer's context. Reports parked for the message id are
  applied to it before the COMMIT, in round trips of their own (messages.recorded_applying_parked).

Concurrent first messages of one customer meet on the customer row, so the later one reads the conversation the
earlier one opened. Another caller opening a conversation for the same WhatsApp id between our two round trips (a
different customer, or CreateConversation) makes our open fail on conversations_one_open: the transaction rolls
back whole and the resolution starts again, then finding that conversation open. No attempt commits part of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from psycopg import errors as pg_errors

from statemgr import metrics
from statemgr.cache import Cache
from statemgr.domain import customers as customer_domain
from statemgr.domain import messages as message_domain
from statemgr.domain.conversations import Conversation, NewConversation, State
from statemgr.domain.errors import Aborted
from statemgr.domain.messages import Direction, KeyKind, MessageKey, Status
from statemgr.events import outbox
from statemgr.services import conversations, customers, messages
from statemgr.store import conversations as conversation_store
from statemgr.store import customers as customer_store
from statemgr.store import integration as store
from statemgr.store.customers import Upserted
from statemgr.store.db import Database, Pipelined

CONTEXT_LIMITS = (customers.RECENT_CONVERSATIONS[0], customers.RECENT_MESSAGES[0])
ATTEMPTS = 3  # a conversation opened by another caller meanwhile costs one more; three in a row is a hot race


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
class _Resolved:
    """A committed resolution and what it changed, to invalidate."""

    result: InboundResult
    upserted: Upserted
    claimed: bool  # the conversation got its customer: its routes name the customer


async def resolve(db: Database, cache: Cache, tenant_id: uuid.UUID, inbound: Inbound) -> InboundResult:
    """Resolves `inbound` in one transaction (see the module docstring), then invalidates what it changed."""
    for _ in range(ATTEMPTS):
        try:
            resolved = await _resolve_once(db, tenant_id, inbound)
        except pg_errors.UniqueViolation as exc:
            if exc.diag.constraint_name != conversation_store.ONE_OPEN:
                raise
            metrics.GENERAL_PATH.labels("ResolveInbound", "conversation_taken").inc()
            continue
        await _invalidate(cache, tenant_id, resolved)
        return resolved.result
    raise Aborted("conversations kept opening for this WhatsApp conversation id meanwhile; retry")


async def _resolve_once(db: Database, tenant_id: uuid.UUID, inbound: Inbound) -> _Resolved:
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
        if existing:
            return await _repeated(transaction, tenant_id, upserted, existing[0])
        return await _record(transaction, tenant_id, inbound, upserted, found, parked)


async def _repeated(
    transaction: Pipelined, tenant_id: uuid.UUID, upserted: Upserted, message: message_domain.Message
) -> _Resolved:
    """A webhook delivered again: the first record, in the conversation it went to, and the customer's context."""
    metrics.GENERAL_PATH.labels("ResolveInbound", "repeated_message").inc()
    conn = transaction.conn
    conversation = await conversation_store.get(conn, tenant_id, message.conversation_id)
    if conversation is None:  # a message's conversation cannot go while the message stays
        raise LookupError(f"conversation {message.conversation_id} of message {message.id} is gone")
    context = await customers.context_in(conn, tenant_id, upserted.customer, *CONTEXT_LIMITS)
    result = InboundResult(context, conversation, message, upserted.created, False, False)
    return _Resolved(result, upserted, claimed=False)


async def _record(
    transaction: Pipelined,
    tenant_id: uuid.UUID,
    inbound: Inbound,
    upserted: Upserted,
    found: Conversation | None,
    parked: bool,
) -> _Resolved:
    """Records the new message in the open conversation (claimed, or opened, as need be), and reads the context.

    `found` was read locked in the first round trip: an open one stays open until this transaction ends, and a new
    one either opens or fails the transaction on conversations_one_open (see `resolve`).
    """
    conn, customer = transaction.conn, upserted.customer
    opened = found is None or found.state is State.CLOSED
    claimed = found is not None and not opened and found.customer_id is None
    if found is not None and not opened:
        conversation_id = found.id
        if claimed:
            metrics.GENERAL_PATH.labels("ResolveInbound", "conversation_to_claim").inc()
            await store.queue_claim(conn, tenant_id, found.id, customer.id)
    else:
        new_conversation = NewConversation(inbound.whatsapp_conversation_id, customer_id=customer.id)
        _, params = conversations.insert_statement(tenant_id, new_conversation)
        conversation_id = params["id"]
        await store.queue_open(conn, params)
    new = inbound_message(inbound, conversation_id)
    recording = await messages.queue_recording(conn, tenant_id, new)
    if parked:
        metrics.GENERAL_PATH.labels("ResolveInbound", "parked_reports").inc()
        recorded = await messages.recorded_applying_parked(conn, tenant_id, recording, new.keys())
    reading = await customer_store.queue_recent(
        conn, tenant_id, customer.id, CONTEXT_LIMITS[0], conversation_id, CONTEXT_LIMITS[1]
    )
    await transaction.commit()  # the second round trip
    if not parked:
        recorded = await messages.recording_read(recording)
    if recorded is None:  # the conversation was locked open, or is our own new one
        raise LookupError(f"conversation {conversation_id} refused a message while locked open")
    conversation, message = recorded
    recent, last = await customer_store.recent_from(reading)
    context = customer_domain.Context(customer, conversation, recent, last)
    return _Resolved(InboundResult(context, conversation, message, upserted.created, opened, True), upserted, claimed)


async def _invalidate(cache: Cache, tenant_id: uuid.UUID, resolved: _Resolved) -> None:
    await customers.invalidate_upserted(cache, tenant_id, resolved.upserted)
    if resolved.result.message_created:  # its activity and reply window moved (and its customer, if claimed)
        await conversations.invalidate(cache, tenant_id, resolved.result.conversation, routes=resolved.claimed)


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
