"""The few writes only the integration resolutions need. Every function runs inside the caller's tenant transaction."""

from __future__ import annotations

import uuid

from statemgr.domain.conversations import Conversation
from statemgr.store import queries
from statemgr.store.db import Connection

Q = queries.load("integration")


async def claim_conversation(
    conn: Connection, tenant_id: uuid.UUID, conversation_id: uuid.UUID, customer_id: uuid.UUID
) -> Conversation | None:
    """Sets the customer of a conversation that has none; None when it has one already."""
    params = {"tenant_id": tenant_id, "id": conversation_id, "customer_id": customer_id}
    row = await (await conn.execute(Q["claim_conversation"], params)).fetchone()
    return Conversation.from_row(row) if row else None
