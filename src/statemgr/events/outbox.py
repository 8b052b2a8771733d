"""Writing events in the same transaction as the state change they report (the transactional outbox).

Ordering. A subscriber's cursor orders the log by (tx_id, seq) (see statemgr.events.cursor). Transaction ids are
handed out when a transaction first writes, which is not always the order in which writers of one conversation get
its row lock: a transaction can take its id, then queue behind one that took a later id but locked first. So the
row's tx_id is this transaction's id raised to the tx_id of the conversation's latest event when that is higher
(one index probe inside the same INSERT, no extra round trip). A conversation's events then sort in the order its
writers committed, and the cursor stays gap-free: tx_id is never below the writer's own id, so "tx_id below the
snapshot's xmin" still implies "written by a transaction that has ended".

That relies on one rule the services keep: append a conversation's event after locking or updating the
conversation's row, in the same transaction, so the previous writer has committed before this INSERT runs.

The tx_id is computed by one SQL function, event_tx_id (sql/0010). The hottest writes append their event in their
own SQL instead of through `append`, to save a round trip, and keep the same rule there: conversations.sql's
insert_conversation (a new conversation has no earlier events: its own id), messages.sql's append_status_event (a
statement after apply_status's row lock) and insert_into_open (run after the conversation's row is locked). Their
payloads are `Event.payload()`'s, which tests compare.
"""

from __future__ import annotations

import uuid

from statemgr.domain.events import Event
from statemgr.store import events as store
from statemgr.store.db import Connection


async def append(conn: Connection, tenant_id: uuid.UUID, event: Event) -> uuid.UUID:
    """Adds `event` to the log inside the caller's transaction; it becomes visible when that commits.

    Call it while holding the row lock of the conversation the event is about (see the module docstring).
    """
    event_id = uuid.uuid4()
    await store.append(conn, tenant_id, event_id, event.type.value, event.conversation_id, event.payload())
    return event_id
