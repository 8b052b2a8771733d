"""The transformers' one-call resolutions, each in ONE tenant transaction.

ResolveInbound upserts the customer, finds the open conversation of the WhatsApp conversation (or opens one: also
after the previous one closed), and records the inbound message idempotently. Concurrent first messages of a new
customer meet on the customer row (INSERT ... ON CONFLICT locks it until commit) and, should two still race, on the
partial unique index conversations_one_open (create_in's ON CONFLICT DO NOTHING then finds the winner): one
customer, one conversation, every message.

ResolveOutbound resolves a Genesys conversation id (current or superseded) to the customer's WhatsApp address and
records the outbound message idempotently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from statemgr.domain import customers as customer_domain
from statemgr.domain import messages as message_domain
from statemgr.domain.conversations import Conversation, NewConversation, State
from statemgr.domain.errors import FailedPrecondition, NotFound
from statemgr.services import conversations, customers, messages
from statemgr.store import conversations as conversation_store
from statemgr.store import customers as customer_store
from statemgr.store import integration as store
from statemgr.store import messages as message_store
from statemgr.store.db import Connection, Database


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
class Outbound:
    """An agent's message as the outbound transformer knows it (checked)."""

    genesys_conversation_id: str
    genesys_message_id: str
    content: str
    media_urls: list[str]
    sent_at: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class OutboundResult:
    whatsapp_id: str
    phone_number: str
    conversation: Conversation
    message: message_domain.Message
    message_created: bool


class IntegrationService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def resolve_inbound(self, tenant_id: uuid.UUID, inbound: Inbound) -> InboundResult:
        async with self._db.tenant(tenant_id) as conn:
            given = customer_domain.CustomerInput(inbound.whatsapp_id, inbound.phone_number, inbound.customer_name)
            upserted = await customers.upsert_in(conn, tenant_id, given, "phone_number")
            key = message_domain.MessageKey(message_domain.KeyKind.WHATSAPP, inbound.whatsapp_message_id)
            await message_store.lock_keys(conn, tenant_id, [key])
            existing = await message_store.find_by_keys(conn, tenant_id, [key])
            if existing:
                return await _repeated_inbound(conn, tenant_id, inbound, upserted.customer, existing)
            recorded, conversation, opened = await _record_new_inbound(conn, tenant_id, inbound, upserted.customer.id)
            context = await customers.context_in(
                conn, tenant_id, upserted.customer, *_CONTEXT_LIMITS, open_conversation=conversation
            )
        return InboundResult(context, conversation, recorded.message, upserted.created, opened, True)

    async def resolve_outbound(self, tenant_id: uuid.UUID, outbound: Outbound) -> OutboundResult:
        async with self._db.tenant(tenant_id) as conn:
            conversation = await conversation_store.lookup_by_genesys_id(
                conn, tenant_id, outbound.genesys_conversation_id
            )
            if conversation is None:
                raise NotFound("conversation with Genesys conversation id", outbound.genesys_conversation_id)
            recorded = await messages.record_in(conn, tenant_id, _outbound_message(outbound, conversation.id))
            conversation = recorded.conversation or conversation
            customer = None
            if conversation.customer_id is not None:
                customer = await customer_store.get(conn, tenant_id, conversation.customer_id)
        whatsapp_id = customer.whatsapp_id if customer else conversation.whatsapp_conversation_id
        phone_number = (customer.phone_number if customer else None) or ""
        return OutboundResult(whatsapp_id, phone_number, conversation, recorded.message, recorded.created)


_CONTEXT_LIMITS = (customers.RECENT_CONVERSATIONS[0], customers.RECENT_MESSAGES[0])


async def _record_new_inbound(
    conn: Connection, tenant_id: uuid.UUID, inbound: Inbound, customer_id: uuid.UUID
) -> tuple[messages.Recorded, Conversation, bool]:
    """Records a new inbound message (its id locked and unused) in the open conversation, opened if need be.

    Returns the recording, the conversation after it, and whether this call opened the conversation.
    """
    conversation, opened = await _open_conversation(conn, tenant_id, inbound, customer_id)
    try:
        recorded = await messages.insert_in(conn, tenant_id, _inbound_message(inbound, conversation.id))
    except FailedPrecondition:  # closed between finding it open and recording: the message opens a new one
        conversation, opened = await _open_conversation(conn, tenant_id, inbound, customer_id)
        recorded = await messages.insert_in(conn, tenant_id, _inbound_message(inbound, conversation.id))
    return recorded, recorded.conversation or conversation, opened


async def _open_conversation(
    conn: Connection, tenant_id: uuid.UUID, inbound: Inbound, customer_id: uuid.UUID
) -> tuple[Conversation, bool]:
    """The open conversation of the WhatsApp conversation id (given to the customer if it had none), or a new one.

    Returns it and whether this call opened it.
    """
    found = await conversation_store.lookup_by_whatsapp_id(conn, tenant_id, inbound.whatsapp_conversation_id)
    if found is None or found.state is State.CLOSED:
        new = NewConversation(inbound.whatsapp_conversation_id, customer_id=customer_id)
        found, conflict = await conversations.create_in(conn, tenant_id, new)
        if conflict is None:
            return found, True
    if found.customer_id is None:
        found = await store.claim_conversation(conn, tenant_id, found.id, customer_id) or found
    return found, False


async def _repeated_inbound(
    conn: Connection,
    tenant_id: uuid.UUID,
    inbound: Inbound,
    customer: customer_domain.Customer,
    existing: list[message_domain.Message],
) -> InboundResult:
    """A webhook delivered again: the first record, in the conversation it went to (ALREADY_EXISTS if it differs)."""
    message = messages.repeat_of(existing, _inbound_message(inbound, existing[0].conversation_id))
    conversation = await conversation_store.get(conn, tenant_id, message.conversation_id)
    if conversation is None:  # a message's conversation cannot go while the message stays
        raise NotFound("conversation", str(message.conversation_id))
    context = await customers.context_in(conn, tenant_id, customer, *_CONTEXT_LIMITS)
    return InboundResult(context, conversation, message, False, False, False)


def _inbound_message(inbound: Inbound, conversation_id: uuid.UUID) -> message_domain.NewMessage:
    return message_domain.NewMessage(
        conversation_id=conversation_id,
        direction=message_domain.Direction.INBOUND,
        whatsapp_message_id=inbound.whatsapp_message_id,
        genesys_message_id=None,
        status=message_domain.Status.SENT,
        content=inbound.content,
        media_urls=inbound.media_urls,
        sent_at=inbound.sent_at,
    )


def _outbound_message(outbound: Outbound, conversation_id: uuid.UUID) -> message_domain.NewMessage:
    return message_domain.NewMessage(
        conversation_id=conversation_id,
        direction=message_domain.Direction.OUTBOUND,
        whatsapp_message_id=None,
        genesys_message_id=outbound.genesys_message_id,
        status=message_domain.Status.PENDING,
        content=outbound.content,
        media_urls=outbound.media_urls,
        sent_at=outbound.sent_at,
    )
