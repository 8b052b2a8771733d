"""`statemgr events retry-unroutable`: the operator's way to have unroutable events delivered once a queue is bound.

The relay retries them by itself with backoff (statemgr.events.relay); this makes every waiting one (of a tenant, or
all) due at once, so the relay sends them in its next round, within about STATEMGR_EVENT_POLL_SECONDS. It runs as
statemgr_relay, the role whose policies see every tenant's events, as the relay does, in one transaction on
STATEMGR_DATABASE_DIRECT_URL when set (like migrate).
"""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from statemgr.events.leader import ROLE
from statemgr.store import events as store


async def retry_unroutable(database_url: str, tenant_id: uuid.UUID | None = None) -> int:
    """Makes the waiting unroutable events due now; returns how many."""
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn, conn.transaction():
        await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ROLE)))
        return await store.retry_unroutable_now(conn, tenant_id)
