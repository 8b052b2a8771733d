"""Writing events in the same transaction as the state change they report (the transactional outbox)."""

from __future__ import annotations

import uuid

from psycopg.types.json import Jsonb

from statemgr.domain.events import Event
from statemgr.store.db import Connection

_INSERT = """
INSERT INTO events (tenant_id, id, type, conversation_id, payload)
VALUES (%(tenant_id)s, %(id)s, %(type)s, %(conversation_id)s, %(payload)s)
"""


async def append(conn: Connection, tenant_id: uuid.UUID, event: Event) -> uuid.UUID:
    """Adds `event` to the log inside the caller's transaction; it becomes visible when that commits."""
    event_id = uuid.uuid4()
    await conn.execute(
        _INSERT,
        {
            "tenant_id": tenant_id,
            "id": event_id,
            "type": event.type.value,
            "conversation_id": event.conversation_id,
            "payload": Jsonb(event.payload()),
        },
    )
    return event_id
