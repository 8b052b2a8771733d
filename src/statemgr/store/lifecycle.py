"""The data lifecycle in PostgreSQL: archive batches and their manifest, restores, erasures (queries/lifecycle.sql).

Every function runs inside a `transaction` (or `policies_transaction`): a tenant transaction of the service's pool
that took the statemgr_lifecycle role for its duration (sql/0012 says what that role may do beyond the service's).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from statemgr.store import queries
from statemgr.store.db import Connection, Database

Q = queries.load("lifecycle")

# The tables a batch archives, in the order they are restored (parents first).
TABLES = (
    "conversations",
    "conversation_state_transitions",
    "conversation_assignments",
    "conversation_genesys_ids",
    "messages",
    "message_status_history",
    "parked_statuses",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    tenant_id: uuid.UUID
    closed_conversation_retention: dt.timedelta
    archive_retention: dt.timedelta


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    id: uuid.UUID
    archive_date: dt.date


Versions = tuple[int, int]
"""A table's share of a batch's fingerprint: its rows' count and the sum of their versions (xmin)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Columns:
    """Rows of one table as read: column names, PostgreSQL type names, the rows as tuples, and their Versions."""

    names: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    versions: Versions = (0, 0)


@dataclasses.dataclass(frozen=True, slots=True)
class StoredObject:
    table_name: str
    object_key: str
    row_count: int
    byte_count: int
    sha256: str


@asynccontextmanager
async def transaction(db: Database, tenant_id: uuid.UUID) -> AsyncIterator[Connection]:
    """A transaction of `tenant_id` as statemgr_lifecycle."""
    async with db.tenant(tenant_id) as conn:
        await conn.execute(Q["become_lifecycle"])
        yield conn


async def policies(db: Database, tenant_id: uuid.UUID | None = None) -> list[Policy]:
    """Every tenant's retention periods (or `tenant_id`'s alone): the job's one read across tenants."""
    async with db.untenanted() as conn:
        await conn.execute(Q["become_lifecycle"])
        rows = await (await conn.execute(Q["retention_policies"], {"tenant_id": tenant_id})).fetchall()
    return [Policy(**row) for row in rows]


async def count_due(conn: Connection, tenant_id: uuid.UUID, retention: dt.timedelta) -> int:
    row = await (await conn.execute(Q["count_due"], {"tenant_id": tenant_id, "retention": retention})).fetchone()
    return int(row["conversations"]) if row else 0


async def count_expired(conn: Connection, tenant_id: uuid.UUID, archive_retention: dt.timedelta) -> int:
    params = {"tenant_id": tenant_id, "archive_retention": archive_retention}
    row = await (await conn.execute(Q["count_expired"], params)).fetchone()
    return int(row["batches"]) if row else 0


async def claim_batch(
    conn: Connection, tenant_id: uuid.UUID, batch: Batch, retention: dt.timedelta, limit: int, max_messages: int
) -> list[uuid.UUID]:
    """Claims up to `limit` due conversations holding at most `max_messages` messages in all (at least one
    conversation, however many it holds) for the new pending `batch`; [] (and no batch) when none is due."""
    params = {
        "tenant_id": tenant_id,
        "batch_id": batch.id,
        "archive_date": batch.archive_date,
        "retention": retention,
        "limit": limit,
        "max_messages": max_messages,
    }
    rows = await (await conn.execute(Q["claim_batch"], params)).fetchall()
    return sorted(row["conversation_id"] for row in rows)


async def pending_batches(conn: Connection, tenant_id: uuid.UUID) -> list[Batch]:
    rows = await (await conn.execute(Q["pending_batches"], {"tenant_id": tenant_id})).fetchall()
    return [Batch(**row) for row in rows]


async def batch_conversations(conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> list[uuid.UUID]:
    params = {"tenant_id": tenant_id, "batch_id": batch_id}
    rows = await (await conn.execute(Q["batch_conversations"], params)).fetchall()
    return [row["conversation_id"] for row in rows]


async def read_table(
    conn: Connection, table: str, tenant_id: uuid.UUID, conversation_ids: Sequence[uuid.UUID]
) -> Columns:
    """The rows of `table` that belong to the conversations, as tuples (no dict per row: batches are large), with
    their Versions (the query reads each row's version last; it is not part of the archived row)."""
    params = {"tenant_id": tenant_id, "conversation_ids": list(conversation_ids)}
    async with conn.cursor(row_factory=tuple_row, binary=True) as cursor:
        await cursor.execute(Q[f"archive_{table}"], params)
        read = await cursor.fetchall()
        description = (cursor.description or [])[:-1]
    names = [column.name for column in description]
    types = [_type_name(conn, column.type_code) for column in description]
    versions = (len(read), sum(row[-1] for row in read))
    return Columns(names, types, [row[:-1] for row in read], versions)


def _type_name(conn: Connection, oid: int) -> str:
    """PostgreSQL's name of a column type; arrays as "_<element>", as pg_type spells them."""
    info = conn.adapters.types.get(oid)
    if info is None:
        return "text"
    return f"_{info.name}" if oid == info.array_oid else info.name


async def lock_batch(conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> str | None:
    """Locks the batch row; its state, or None if there is no such batch."""
    row = await (await conn.execute(Q["lock_batch"], {"tenant_id": tenant_id, "batch_id": batch_id})).fetchone()
    return None if row is None else str(row["state"])


async def lock_conversations(conn: Connection, tenant_id: uuid.UUID, conversation_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(Q["lock_conversations"], {"tenant_id": tenant_id, "conversation_ids": list(conversation_ids)})


async def record_object(conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID, stored: StoredObject) -> None:
    params = {"tenant_id": tenant_id, "batch_id": batch_id, **dataclasses.asdict(stored)}
    await conn.execute(Q["record_object"], params)


async def purge_batch_rows(
    conn: Connection, tenant_id: uuid.UUID, conversation_ids: Sequence[uuid.UUID]
) -> dict[str, Versions]:
    """Deletes the conversations and everything that belongs to them, children first; the Versions of what each
    table lost."""
    params = {"tenant_id": tenant_id, "conversation_ids": list(conversation_ids)}
    # parked reports first: they are matched by their messages' ids
    return {table: await _purge(conn, table, params) for table in reversed(TABLES)}


async def _purge(conn: Connection, table: str, params: dict[str, Any]) -> Versions:
    """Deletes the conversations' rows of `table` (purge_<table>); the Versions of what it deleted."""
    row = await (await conn.execute(Q[f"purge_{table}"], params)).fetchone()
    return (int(row["row_count"]), int(row["version_sum"])) if row else (0, 0)


async def mark_archived(conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> None:
    await conn.execute(Q["mark_archived"], {"tenant_id": tenant_id, "batch_id": batch_id})


async def abandon_batch(conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> None:
    await conn.execute(Q["abandon_batch"], {"tenant_id": tenant_id, "batch_id": batch_id})


async def batch_objects(conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> list[StoredObject]:
    rows = await (await conn.execute(Q["batch_objects"], {"tenant_id": tenant_id, "batch_id": batch_id})).fetchall()
    return [StoredObject(**row) for row in rows]


async def expired_batches(
    conn: Connection, tenant_id: uuid.UUID, archive_retention: dt.timedelta, limit: int
) -> list[Batch]:
    params = {"tenant_id": tenant_id, "archive_retention": archive_retention, "limit": limit}
    rows = await (await conn.execute(Q["expired_batches"], params)).fetchall()
    return [Batch(**row) for row in rows]


async def expire_batch(conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> None:
    await conn.execute(Q["expire_batch"], {"tenant_id": tenant_id, "batch_id": batch_id})


async def find_archived(conn: Connection, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> uuid.UUID | None:
    """The archived batch holding the conversation (not restored since), if any."""
    params = {"tenant_id": tenant_id, "conversation_id": conversation_id}
    row = await (await conn.execute(Q["find_archived"], params)).fetchone()
    return None if row is None else row["batch_id"]


async def conversation_exists(conn: Connection, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
    params = {"tenant_id": tenant_id, "conversation_id": conversation_id}
    row = await (await conn.execute(Q["conversation_exists"], params)).fetchone()
    return bool(row and row["live"])


async def insert_rows(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Inserts archived rows as they were (JSON-ready values; jsonb_populate_recordset casts each column)."""
    if rows:
        await conn.execute(Q[f"restore_{table}"], {"rows": Jsonb(rows)})


async def mark_restored(
    conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID, conversation_id: uuid.UUID
) -> None:
    params = {"tenant_id": tenant_id, "batch_id": batch_id, "conversation_id": conversation_id}
    await conn.execute(Q["mark_restored"], params)


# -- erasure ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Audit:
    id: uuid.UUID
    completed: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ErasedConversation:
    """A conversation of an erased customer as it was before: what its cache keys were."""

    id: uuid.UUID
    state: str
    whatsapp_conversation_id: str
    genesys_conversation_ids: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class ErasedCustomer:
    id: uuid.UUID
    whatsapp_id: str
    phone_number: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivedPart:
    """The archived batch holding some of a customer's conversations."""

    batch_id: uuid.UUID
    archive_date: dt.date
    conversation_ids: list[uuid.UUID]


async def find_audit(conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> Audit | None:
    params = {"tenant_id": tenant_id, "customer_id": customer_id}
    row = await (await conn.execute(Q["find_audit"], params)).fetchone()
    return None if row is None else Audit(row["id"], row["completed_at"] is not None)


async def incomplete_audits(conn: Connection, tenant_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(audit id, customer id) of erasures whose archive objects are not all rewritten yet."""
    rows = await (await conn.execute(Q["incomplete_audits"], {"tenant_id": tenant_id})).fetchall()
    return [(row["id"], row["customer_id"]) for row in rows]


async def lock_customer(conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> ErasedCustomer | None:
    params = {"tenant_id": tenant_id, "customer_id": customer_id}
    row = await (await conn.execute(Q["lock_customer"], params)).fetchone()
    return None if row is None else ErasedCustomer(row["id"], row["whatsapp_id"], row["phone_number"])


async def lock_customer_conversations(
    conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> list[ErasedConversation]:
    params = {"tenant_id": tenant_id, "customer_id": customer_id}
    rows = await (await conn.execute(Q["lock_customer_conversations"], params)).fetchall()
    return [
        ErasedConversation(
            row["id"],
            row["state"],
            row["whatsapp_conversation_id"],
            [g for g in [row["genesys_conversation_id"], *row["previous_genesys_conversation_ids"]] if g],
        )
        for row in rows
    ]


async def erase_live(
    conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID, conversations: list[ErasedConversation]
) -> dict[str, int]:
    """Anonymises the customer and everything of theirs in the live tables; counts by what was changed.

    Parked reports are matched by the messages' provider ids, so they go before the ids are replaced.
    """
    ids = [c.id for c in conversations]
    opened = [c for c in conversations if c.state != "closed"]
    by_conversations = {"tenant_id": tenant_id, "conversation_ids": ids}
    counts: dict[str, int] = {}
    counts["parked_statuses"], _ = await _purge(conn, "parked_statuses", by_conversations)
    counts["messages"] = await _rowcount(conn, "erase_messages", by_conversations)
    counts["conversation_state_transitions"] = await _rowcount(conn, "erase_transition_reasons", by_conversations)
    counts["conversation_assignments"] = await _rowcount(conn, "erase_assignment_reasons", by_conversations)
    counts["conversations"] = await _rowcount(conn, "erase_conversations", by_conversations)
    closes = {"tenant_id": tenant_id, "conversation_ids": [c.id for c in opened], "states": [c.state for c in opened]}
    counts["conversations_closed"] = await _rowcount(conn, "record_erasure_closes", closes)
    counts["events"] = await _rowcount(conn, "erase_event_payloads", by_conversations)
    counts["customers"] = await _rowcount(conn, "erase_customer", {"tenant_id": tenant_id, "customer_id": customer_id})
    return counts


async def insert_audit(
    conn: Connection,
    tenant_id: uuid.UUID,
    audit_id: uuid.UUID,
    customer_id: uuid.UUID,
    api_key_id: uuid.UUID | None,
    counts: dict[str, int],
) -> None:
    params = {
        "tenant_id": tenant_id,
        "id": audit_id,
        "customer_id": customer_id,
        "api_key_id": api_key_id,
        "counts": Jsonb(counts),
    }
    await conn.execute(Q["insert_audit"], params)


async def customer_batches(conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> list[ArchivedPart]:
    params = {"tenant_id": tenant_id, "customer_id": customer_id}
    rows = await (await conn.execute(Q["customer_batches"], params)).fetchall()
    return [ArchivedPart(**row) for row in rows]


async def mark_rewritten(conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> None:
    await conn.execute(Q["mark_rewritten"], {"tenant_id": tenant_id, "batch_id": batch_id})


async def complete_audit(conn: Connection, tenant_id: uuid.UUID, audit_id: uuid.UUID, counts: dict[str, int]) -> None:
    await conn.execute(Q["complete_audit"], {"tenant_id": tenant_id, "id": audit_id, "counts": Jsonb(counts)})


async def _rowcount(conn: Connection, query: str, params: dict[str, Any]) -> int:
    cursor = await conn.execute(Q[query], params)
    return max(cursor.rowcount, 0)
