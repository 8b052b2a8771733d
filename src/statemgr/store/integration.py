"""The few writes only the integration resolutions need. Every function runs inside the caller's tenant transaction."""

from __future__ import annotations

import dataclasses
import uuid

from statemgr.domain.conversations import Conversation
from statemgr.domain.messages import Message, MessageKey
from statemgr.store import conversations as conversation_store
from statemgr.store import messages as message_store
from statemgr.store import queries
from statemgr.store.db import Connection, Cursor

Q = queries.load("integration")


async def lock_and_find_inbound(
    conn: Connection, tenant_id: uuid.UUID, key: MessageKey, whatsapp_conversation_id: str
) -> tuple[list[Message], Conversation | None]:
    """The messages holding `key`, read under its lock (messages.lock_and_find), and the conversation of the
    WhatsApp conversation id (conversations.lookup_by_whatsapp_id), also read under it: in one round trip."""
    params = {"tenant_id": tenant_id, "whatsapp_conversation_id": whatsapp_conversation_id}
    async with conn.pipeline():
        finding = await message_store.queue_lock_and_find(conn, tenant_id, [key])
        looking = await conn.execute(conversation_store.Q["lookup_by_whatsapp_id"], params)
    row = await looking.fetchone()
    return await message_store.found(finding), None if row is None else Conversation.from_row(row)


async def claim_conversation(
    conn: Connection, tenant_id: uuid.UUID, conversation_id: uuid.UUID, customer_id: uuid.UUID
) -> Conversation | None:
    """Sets the customer of a conversation that has none; None when it has one already."""
    params = {"tenant_id": tenant_id, "id": conversation_id, "customer_id": customer_id}
    row = await (await conn.execute(Q["claim_conversation"], params)).fetchone()
    return Conversation.from_row(row) if row else None


@dataclasses.dataclass(frozen=True, slots=True)
class InboundReads:
    """What ResolveInbound's fast path reads in its first round trip, as cursors to fetch once it has synced."""

    existing: Cursor  # the messages holding the WhatsApp message id, read under its lock
    parked: Cursor  # whether reports are parked for it
    conversation: Cursor  # the WhatsApp conversation's open (else latest) conversation, locked


async def queue_inbound_reads(
    conn: Connection, tenant_id: uuid.UUID, key: MessageKey, whatsapp_conversation_id: str
) -> InboundReads:
    params = {"tenant_id": tenant_id, "whatsapp_conversation_id": whatsapp_conversation_id}
    existing = await message_store.queue_lock_and_find(conn, tenant_id, [key])
    parked = await message_store.queue_any_parked(conn, tenant_id, [key])
    return InboundReads(existing, parked, await conn.execute(Q["lock_latest_by_whatsapp_id"], params))


async def inbound_reads(reads: InboundReads) -> tuple[list[Message], bool, Conversation | None]:
    """The messages holding the id, whether reports are parked for it, and the conversation (see InboundReads)."""
    existing = await message_store.found(reads.existing)
    parked = await message_store.any_parked(reads.parked)
    row = await reads.conversation.fetchone()
    return existing, parked, None if row is None else Conversation.from_row(row)
