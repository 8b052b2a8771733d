"""The transformers' one-call resolutions, each in ONE tenant transaction, invalidating what it wrote after commit.

ResolveInbound upserts the customer, finds the open conversation of the WhatsApp conversation (or opens one: also
after the previous one closed), and records the inbound message idempotently. Concurrent first messages of a new
customer meet on the customer row (INSERT ... ON CONFLICT locks it until commit) and, should two still race, on the
partial unique index conversations_one_open (create_in's ON CONFLICT DO NOTHING then finds the winner): one
customer, one conversation, every message.

ResolveOutbound resolves a Genesys conversation id (current or superseded) to a `Route` (the conversation, and the
customer to address), which the api layer caches, and records the outbound message idempotently in that
conversation: the recording goes to PostgreSQL on every call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from statemgr.cache import Cache
from statemgr.domain import customers as customer_domain
from statemgr.domain import messages as message_domain
from statemgr.domain.conversations import Conversation, NewConversation, State
from statemgr.domain.errors import FailedPrecondition, NotFound
from statemgr.services import conversations, customers, messages
from statemgr.services.inbound import CONTEXT_LIMITS, Inbound, InboundResult, inbound_message, resolve_fast
from statemgr.store import conversations as conversation_store
from statemgr.store import integration as store
from statemgr.store.customers import Upserted
from statemgr.store.db import Connection, Database


@dataclasses.dataclass(frozen=True, slots=True)
class Outbound:
    """An agent's message as the outbound transformer knows it (checked)."""

    genesys_conversation_id: str
    genesys_message_id: str
    content: str
    media_urls: list[str]
    sent_at: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """Where ResolveOutbound sends a Genesys conversation's messages: what the api layer caches per Genesys id.

    A message changes none of this, so recording one keeps the route; the writes that can (a Genesys mapping, a new
    conversation, a state change, a customer claiming the conversation) invalidate it. The customer's address
    (WhatsApp id, phone number) is read through the customer's own cache key, which the customer's writes
    invalidate; the reply window is judged from the conversation row the recording returns.
    """

    conversation_id: uuid.UUID
    whatsapp_conversation_id: str
    customer_id: uuid.UUID | None


@dataclasses.dataclass(frozen=True, slots=True)
class OutboundResult:
    conversation: Conversation  # as the recording left it
    message: message_domain.Message
    message_created: bool


class IntegrationService:
    def __init__(self, db: Database, cache: Cache) -> None:
        self._db = db
        self._cache = cache

    async def resolve_inbound(self, tenant_id: uuid.UUID, inbound: Inbound) -> InboundResult:
        """The fast path (services.inbound) where it can; else the general one, once the fast one has committed
        the customer's upsert (which the general path then repeats, changing nothing)."""
        attempt = await resolve_fast(self._db, tenant_id, inbound)
        written = _Written(upserted=attempt.upserted)
        if attempt.result is not None:
            written.conversation(attempt.result.conversation)
            await written.invalidate(self._cache, tenant_id)
            return attempt.result
        await customers.invalidate_upserted(self._cache, tenant_id, attempt.upserted)
        written = _Written()
        async with self._db.tenant(tenant_id) as conn:
            result = await _resolve_inbound(conn, tenant_id, inbound, written)
        await written.invalidate(self._cache, tenant_id)
        customer_created = attempt.upserted.created or result.customer_created
        return dataclasses.replace(result, customer_created=customer_created)

    async def route(self, tenant_id: uuid.UUID, genesys_conversation_id: str) -> Route | None:
        """The route of a Genesys conversation id (current or superseded); None when no conversation has it."""
        found = await conversation_store.lookup_by_genesys_id(self._db, tenant_id, genesys_conversation_id)
        return None if found is None else Route(found.id, found.whatsapp_conversation_id, found.customer_id)

    async def record_outbound(self, tenant_id: uuid.UUID, outbound: Outbound, route: Route) -> OutboundResult:
        """Records the message in the route's conversation. For a new message, NOT_FOUND or FAILED_PRECONDITION when
        that conversation is gone or closed; ALREADY_EXISTS when the Genesys message id has other content."""
        recorded = await messages.record(self._db, tenant_id, _outbound_message(outbound, route.conversation_id))
        conversation = recorded.conversation or await _conversation(self._db, tenant_id, route.conversation_id)
        await messages.invalidate_touched(self._cache, tenant_id, recorded)
        return OutboundResult(conversation, recorded.message, recorded.created)


@dataclasses.dataclass
class _Written:
    """What a resolution changed, to invalidate once it has committed."""

    upserted: Upserted | None = None
    # id -> the conversation as last written, and whether a write changed what its routes hold
    conversations: dict[uuid.UUID, tuple[Conversation, bool]] = dataclasses.field(default_factory=dict)

    def conversation(self, conversation: Conversation, routes: bool = False) -> None:
        earlier = self.conversations.get(conversation.id)
        self.conversations[conversation.id] = (conversation, routes or (earlier is not None and earlier[1]))

    async def invalidate(self, cache: Cache, tenant_id: uuid.UUID) -> None:
        if self.upserted is not None:
            await customers.invalidate_upserted(cache, tenant_id, self.upserted)
        for conversation, routes in self.conversations.values():
            await conversations.invalidate(cache, tenant_id, conversation, routes=routes)


async def _resolve_inbound(
    conn: Connection, tenant_id: uuid.UUID, inbound: Inbound, written: _Written
) -> InboundResult:
    given = customer_domain.CustomerInput(inbound.whatsapp_id, inbound.phone_number, inbound.customer_name)
    upserted = written.upserted = await customers.upsert_in(conn, tenant_id, given, "phone_number")
    key = message_domain.MessageKey(message_domain.KeyKind.WHATSAPP, inbound.whatsapp_message_id)
    existing, found = await store.lock_and_find_inbound(conn, tenant_id, key, inbound.whatsapp_conversation_id)
    if existing:
        return await _repeated_inbound(conn, tenant_id, inbound, upserted.customer, existing)
    customer_id = upserted.customer.id
    recorded, conversation, opened = await _record_new_inbound(conn, tenant_id, inbound, customer_id, found, written)
    context = await customers.context_in(
        conn, tenant_id, upserted.customer, *CONTEXT_LIMITS, open_conversation=conversation
    )
    return InboundResult(context, conversation, recorded.message, upserted.created, opened, True)


async def _record_new_inbound(
    conn: Connection,
    tenant_id: uuid.UUID,
    inbound: Inbound,
    customer_id: uuid.UUID,
    found: Conversation | None,
    written: _Written,
) -> tuple[messages.Recorded, Conversation, bool]:
    """Records a new inbound message (its id locked and unused) in the open conversation, opened if need be.

    `found` is what lookup_by_whatsapp_id read for the WhatsApp conversation id. Returns the recording, the
    conversation after it, and whether this call opened the conversation.
    """
    conversation, opened = await _open_conversation(conn, tenant_id, inbound, customer_id, found, written)
    try:
        recorded = await messages.insert_in(conn, tenant_id, inbound_message(inbound, conversation.id))
    except FailedPrecondition:  # closed between finding it open and recording: the message opens a new one
        found = await conversation_store.lookup_by_whatsapp_id(conn, tenant_id, inbound.whatsapp_conversation_id)
        conversation, opened = await _open_conversation(conn, tenant_id, inbound, customer_id, found, written)
        recorded = await messages.insert_in(conn, tenant_id, inbound_message(inbound, conversation.id))
    conversation = recorded.conversation or conversation
    written.conversation(conversation)  # its activity and reply window moved
    return recorded, conversation, opened


async def _open_conversation(
    conn: Connection,
    tenant_id: uuid.UUID,
    inbound: Inbound,
    customer_id: uuid.UUID,
    found: Conversation | None,
    written: _Written,
) -> tuple[Conversation, bool]:
    """The open conversation of the WhatsApp conversation id (given to the customer if it had none), or a new one.

    `found` is the conversation lookup_by_whatsapp_id just read. Returns it and whether this call opened it.
    """
    if found is None or found.state is State.CLOSED:
        new = NewConversation(inbound.whatsapp_conversation_id, customer_id=customer_id)
        found, conflict = await conversations.create_in(conn, tenant_id, new)
        if conflict is None:
            written.conversation(found)
            return found, True
    if found.customer_id is None:
        claimed = await store.claim_conversation(conn, tenant_id, found.id, customer_id)
        if claimed is not None:
            written.conversation(claimed, routes=True)  # a route names the conversation's customer
            found = claimed
    return found, False


async def _repeated_inbound(
    conn: Connection,
    tenant_id: uuid.UUID,
    inbound: Inbound,
    customer: customer_domain.Customer,
    existing: list[message_domain.Message],
) -> InboundResult:
    """A webhook delivered again: the first record, in the conversation it went to (ALREADY_EXISTS if it differs)."""
    message = messages.repeat_of(existing, inbound_message(inbound, existing[0].conversation_id))
    conversation = await _conversation(conn, tenant_id, message.conversation_id)
    context = await customers.context_in(conn, tenant_id, customer, *CONTEXT_LIMITS)
    return InboundResult(context, conversation, message, False, False, False)


async def _conversation(
    source: Connection | Database, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> Conversation:
    found = await conversation_store.get(source, tenant_id, conversation_id)
    if found is None:  # a message's conversation cannot go while the message stays
        raise NotFound("conversation", str(conversation_id))
    return found


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
