"""The few statements only ResolveInbound needs. Every function runs inside the caller's tenant transaction."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any

from statemgr.domain.conversations import Conversation
from statemgr.domain.messages import Message, MessageKey
from statemgr.store import messages as message_store
from statemgr.store import queries
from statemgr.store.db import Connection, Cursor

Q = queries.load("integration")


@dataclasses.dataclass(frozen=True, slots=True)
class InboundReads:
    """What ResolveInbound reads in its first round trip, as cursors to fetch once it has synced."""

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


async def queue_claim(
    conn: Connection, tenant_id: uuid.UUID, conversation_id: uuid.UUID, customer_id: uuid.UUID
) -> None:
    """Queues giving a conversation opened without a customer (and locked by this transaction) to `customer_id`."""
    params = {"tenant_id": tenant_id, "id": conversation_id, "customer_id": customer_id}
    await conn.execute(Q["claim_conversation"], params)


async def queue_open(conn: Connection, params: Mapping[str, Any]) -> None:
    """Queues open_conversation with the parameters of conversations.insert_statement (a customer, nothing else)."""
    await conn.execute(Q["open_conversation"], params)
