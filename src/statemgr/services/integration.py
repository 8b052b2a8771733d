"""The transformers' one-call resolutions, each in ONE tenant transaction, invalidating what it wrote after commit.

ResolveInbound upserts the customer, finds the open conversation of the WhatsApp conversation (or opens one: also
after the previous one closed), and records the inbound message idempotently: services.inbound holds its one path.

ResolveOutbound resolves a Genesys conversation id (current or superseded) to a `Route` (the conversation, and the
customer to address), which the api layer caches, and records the outbound message idempotently in that
conversation: the recording goes to PostgreSQL on every call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from statemgr.cache import Cache
from statemgr.domain import messages as message_domain
from statemgr.domain.conversations import Conversation
from statemgr.domain.errors import NotFound
from statemgr.services import messages
from statemgr.services.inbound import Inbound, InboundResult, resolve
from statemgr.store import conversations as conversation_store
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
        return await resolve(self._db, self._cache, tenant_id, inbound)

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
