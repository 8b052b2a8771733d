"""Conversations in PostgreSQL: rows in, domain objects out. Every function runs inside the caller's tenant
transaction (statemgr.store.db.Database.tenant), but for `insert_once` and the reads given the Database, which run
in one of their own; the service layer owns the transactions and the outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any, LiteralString

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from statemgr.domain import conversations as domain
from statemgr.domain import customers
from statemgr.domain.errors import Aborted, AlreadyExists, InvalidArgument, StatemgrError
from statemgr.domain.events import Event
from statemgr.store import errors, queries
from statemgr.store.db import Connection, Database, Statement, first_row

Q = queries.load("conversations")

ONE_OPEN = "conversations_one_open"
GENESYS_OPEN = "conversations_genesys_open"
CUSTOMER_FK = "conversations_customer_fkey"
_LOST_RACE = (pg_errors.LockNotAvailable, pg_errors.SerializationFailure, pg_errors.DeadlockDetected)

Position = tuple[dt.datetime, uuid.UUID] | None


def insert_statement(
    tenant_id: uuid.UUID, new: domain.NewConversation, conversation_id: uuid.UUID, created: Event
) -> Statement:
    """The INSERT of conversation `conversation_id` with its `created` event (see insert_conversation)."""
    params = {
        "tenant_id": tenant_id,
        "id": conversation_id,
        "whatsapp_conversation_id": new.whatsapp_conversation_id,
        "genesys_conversation_id": new.genesys_conversation_id,
        "customer_id": new.customer_id,
        "agent_id": new.agent_id,
        "metadata": Jsonb(new.metadata),
        "request_id": new.request_id,
        "event_id": uuid.uuid4(),
        "event_type": created.type.value,
        "event_payload": Jsonb(created.payload()),
    }
    return Q["insert_conversation"], params


async def insert(conn: Connection, statement: Statement) -> domain.Conversation | None:
    """Runs an `insert_statement` in the caller's transaction; None when a unique key is taken (`find_conflict`)."""
    row = await (await _execute(conn, *statement)).fetchone()
    return None if row is None else domain.Conversation.from_row(row)


async def insert_once(db: Database, tenant_id: uuid.UUID, statement: Statement) -> domain.Conversation | None:
    """An `insert_statement` in a transaction of its own, in one round trip (Database.once); None as `insert`."""
    try:
        (rows,) = await db.once(tenant_id, [statement])
    except psycopg.Error as exc:
        raise _translated(exc) from exc
    return domain.Conversation.from_row(rows[0]) if rows else None


async def find_conflict(
    conn: Connection, tenant_id: uuid.UUID, new: domain.NewConversation
) -> tuple[str, domain.Conversation] | None:
    """The conversation holding a key `new` wants, and which key: request_id, whatsapp_ or genesys_conversation_id."""
    params = {
        "tenant_id": tenant_id,
        "request_id": new.request_id,
        "whatsapp_conversation_id": new.whatsapp_conversation_id,
        "genesys_conversation_id": new.genesys_conversation_id,
    }
    row = await (await _execute(conn, Q["find_conflict"], params)).fetchone()
    return None if row is None else (str(row["conflict"]), domain.Conversation.from_row(row))


async def get(
    source: Connection | Database, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> domain.Conversation | None:
    return await _optional(source, "get_conversation", {"tenant_id": tenant_id, "id": conversation_id})


async def lock(conn: Connection, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> domain.Conversation | None:
    """The conversation, locked against other writers until the transaction ends."""
    return await _optional(conn, "lock_conversation", {"tenant_id": tenant_id, "id": conversation_id})


async def lookup_by_whatsapp_id(
    source: Connection | Database, tenant_id: uuid.UUID, whatsapp_id: str
) -> domain.Conversation | None:
    """The open conversation of a WhatsApp conversation id, else its latest one."""
    params = {"tenant_id": tenant_id, "whatsapp_conversation_id": whatsapp_id}
    return await _optional(source, "lookup_by_whatsapp_id", params)


async def lookup_by_genesys_id(
    source: Connection | Database, tenant_id: uuid.UUID, genesys_id: str
) -> domain.Conversation | None:
    """The open conversation currently mapped to a Genesys id, else the one mapped to it (or before it) last."""
    params = {"tenant_id": tenant_id, "genesys_conversation_id": genesys_id}
    return await _optional(source, "lookup_by_genesys_id", params)


async def list_page(
    conn: Connection, tenant_id: uuid.UUID, filters: domain.Filter, after: Position, limit: int
) -> list[domain.Conversation]:
    """Up to `limit` conversations matching `filters`, newest first, after the `after` position."""
    return await _many(conn, "list_conversations", list_params(tenant_id, filters, after, limit))


def list_params(tenant_id: uuid.UUID, filters: domain.Filter, after: Position, limit: int) -> dict[str, Any]:
    """The parameters of Q["list_conversations"] (see `list_page`)."""
    return {
        "tenant_id": tenant_id,
        "state": None if filters.state is None else filters.state.value,
        "agent_id": filters.agent_id,
        "customer_id": filters.customer_id,
        "active_from": filters.active_from,
        "active_to": filters.active_to,
        **_after(after),
        "limit": limit,
    }


async def search_page(
    conn: Connection, tenant_id: uuid.UUID, criteria: domain.Criteria, after: Position, limit: int
) -> list[domain.Conversation]:
    """Up to `limit` conversations matching every criterion, newest first, after the `after` position."""
    params = {
        "tenant_id": tenant_id,
        "whatsapp_conversation_id": criteria.whatsapp_conversation_id,
        "genesys_conversation_id": criteria.genesys_conversation_id,
        "metadata": None if criteria.metadata is None else Jsonb(criteria.metadata),
        "phone_number": criteria.customer_phone_number,
        **_name_range(criteria.customer_name_key),
        **_after(after),
        "limit": limit,
    }
    return await _many(conn, "search_conversations", params)


async def set_state(
    conn: Connection, tenant_id: uuid.UUID, current: domain.Conversation, target: domain.State, reason: str
) -> domain.Conversation:
    """Moves a locked conversation to `target` and records the change (the caller checked the move)."""
    params = {
        "tenant_id": tenant_id,
        "id": current.id,
        "from_state": current.state.value,
        "to_state": target.value,
        "reason": reason,
    }
    return await _one(conn, "set_state", params)


async def assign_agent(
    conn: Connection, tenant_id: uuid.UUID, current: domain.Conversation, agent_id: uuid.UUID, reason: str
) -> domain.Conversation:
    """Assigns a locked conversation to `agent_id` and records the assignment."""
    params = {
        "tenant_id": tenant_id,
        "id": current.id,
        "from_agent_id": current.agent_id,
        "to_agent_id": agent_id,
        "reason": reason,
    }
    return await _one(conn, "assign_agent", params)


async def update(
    conn: Connection, tenant_id: uuid.UUID, current: domain.Conversation, changes: domain.Changes
) -> domain.Conversation:
    """Applies `changes` to a locked conversation; a new Genesys id is recorded as a mapping change."""
    params = {
        "tenant_id": tenant_id,
        "id": current.id,
        "metadata": None if changes.metadata is None else Jsonb(changes.metadata),
        "genesys_conversation_id": changes.genesys_conversation_id,
        "previous_genesys_conversation_id": current.genesys_conversation_id,
    }
    return await _one(conn, "update_conversation", params)


async def history_page(
    conn: Connection,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    after: tuple[dt.datetime, int, str] | None,
    limit: int,
) -> list[domain.HistoryEntry]:
    """Up to `limit` timeline entries of a conversation, oldest first, after the `after` position."""
    at, rank, entry_id = after if after is not None else (None, None, None)
    params = {
        "tenant_id": tenant_id,
        "conversation_id": conversation_id,
        "after_at": at,
        "after_rank": rank,
        "after_id": entry_id,
        "limit": limit,
    }
    rows = await (await _execute(conn, Q["history"], params)).fetchall()
    return [domain.HistoryEntry(**row) for row in rows]


async def recently_active(
    conn: Connection, since: dt.datetime, limit: int
) -> AsyncGenerator[tuple[uuid.UUID, domain.Conversation], None]:
    """(tenant id, conversation) of every tenant's open conversations active since `since`, newest activity first,
    at most `limit`, streamed through a server-side cursor. `conn` is in a transaction with no tenant set
    (Database.untenanted): the cache warm-up's one read across tenants (sql/0009)."""
    async with conn.cursor(name="cache_warm") as cursor:
        await cursor.execute(Q["cache_warm"], {"since": since, "limit": limit})
        async for row in cursor:
            yield row["tenant_id"], domain.Conversation.from_row(row)


def translate(exc: psycopg.Error) -> StatemgrError | None:
    """The domain error a database error on conversations stands for, by constraint name; None if none."""
    if errors.is_unique_violation(exc, ONE_OPEN):
        return AlreadyExists("conversation", "an open conversation for this WhatsApp conversation id exists")
    if errors.is_unique_violation(exc, GENESYS_OPEN):
        return AlreadyExists("conversation", "another open conversation is mapped to this Genesys conversation id")
    if isinstance(exc, pg_errors.ForeignKeyViolation) and errors.constraint_of(exc) == CUSTOMER_FK:
        return InvalidArgument("conversation.customer_id", "names no customer of this tenant")
    if isinstance(exc, _LOST_RACE):
        return Aborted("a concurrent change to this conversation won; read it again and retry")
    return None


async def _execute(
    conn: Connection, query: LiteralString, params: Mapping[str, Any]
) -> psycopg.AsyncCursor[dict[str, Any]]:
    try:
        return await conn.execute(query, params)
    except psycopg.Error as exc:
        raise _translated(exc) from exc


def _translated(exc: psycopg.Error) -> Exception:
    """The domain error for `exc`, else `exc` itself."""
    return translate(exc) or exc


async def _optional(source: Connection | Database, name: str, params: Mapping[str, Any]) -> domain.Conversation | None:
    """The conversation a query finds: inside the caller's transaction (a Connection), or in a transaction of its
    own in one round trip (the Database)."""
    if isinstance(source, Database):
        row = await first_row(source, Q[name], params)
    else:  # through _execute: a lock may be refused, which the caller hears as ABORTED
        row = await (await _execute(source, Q[name], params)).fetchone()
    return None if row is None else domain.Conversation.from_row(row)


async def _one(conn: Connection, name: str, params: Mapping[str, Any]) -> domain.Conversation:
    found = await _optional(conn, name, params)
    if found is None:
        raise LookupError(f"{name} returned no row for a locked conversation")
    return found


async def _many(conn: Connection, name: str, params: Mapping[str, Any]) -> list[domain.Conversation]:
    rows = await (await _execute(conn, Q[name], params)).fetchall()
    return [domain.Conversation.from_row(row) for row in rows]


def _name_range(key: str | None) -> dict[str, str | None]:
    low, high = (None, None) if key is None else customers.name_range(key)
    return {"name_low": low, "name_high": high}


def _after(position: Position) -> dict[str, object]:
    created, ident = position if position is not None else (None, None)
    return {"after_created": created, "after_id": ident}
