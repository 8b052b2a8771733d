"""Customers in PostgreSQL. Every function runs inside the caller's tenant transaction; the reads given the Database
run in one of their own (one round trip)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from statemgr.domain import conversations
from statemgr.domain.customers import Assignment, Customer, CustomerInput, name_range, search_key
from statemgr.domain.messages import Message
from statemgr.store import conversations as conversation_store
from statemgr.store import messages as message_store
from statemgr.store import queries
from statemgr.store.db import Connection, Cursor, Database, first_row

Q = queries.load("customers")


@dataclasses.dataclass(frozen=True, slots=True)
class Upserted:
    """The customer after an upsert; `created` and `updated` say what the upsert did.

    `previous_phone_number` is the number the upsert may have replaced (read under the row lock), so the caller can
    invalidate what was cached under it; None when it had none or could not have replaced it.
    """

    customer: Customer
    created: bool
    updated: bool
    previous_phone_number: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """A page of a search: where it starts (`after`: the last sort key and id of the previous page) and how long."""

    limit: int
    after_key: str | None = None
    after_id: uuid.UUID | None = None


async def upsert(
    conn: Connection, tenant_id: uuid.UUID, given: CustomerInput, default_phone_number: str | None
) -> Upserted:
    """Creates the customer of `given.whatsapp_id` or applies the fields it gives; locks the row till commit.

    `default_phone_number` fills the phone number when neither `given` nor the stored profile has one.
    """
    async with conn.pipeline():
        upserting = await queue_upsert(conn, tenant_id, given, default_phone_number)
    return await upserted(upserting)


@dataclasses.dataclass(frozen=True, slots=True)
class Upserting:
    """The cursors of a queued upsert: the row as it was (when it may change number), as the upsert left it (no row
    when it changed nothing), and as it is after the upsert."""

    previous: Cursor | None
    written: Cursor
    current: Cursor


async def queue_upsert(
    conn: Connection, tenant_id: uuid.UUID, given: CustomerInput, default_phone_number: str | None
) -> Upserting:
    """Sends `upsert`'s statements inside the caller's pipeline; `upserted` reads them once it has synced."""
    params = _upsert_params(tenant_id, given, default_phone_number)
    by_whatsapp_id = {"tenant_id": tenant_id, "whatsapp_id": given.whatsapp_id}
    previous = None
    if given.phone_number is not None:  # a new number may replace the stored one: read that one first, locked
        previous = await conn.execute(Q["lock_by_whatsapp_id"], by_whatsapp_id)
    written = await conn.execute(Q["upsert_customer"], params)
    return Upserting(previous, written, await conn.execute(Q["get_by_whatsapp_id"], by_whatsapp_id))


async def upserted(upserting: Upserting) -> Upserted:
    previous = None if upserting.previous is None else await upserting.previous.fetchone()
    before = None if previous is None else previous["phone_number"]
    row = await upserting.written.fetchone()
    if row is not None:
        return Upserted(Customer.from_row(row), bool(row["created"]), not row["created"], before)
    existing = await upserting.current.fetchone()
    if existing is None:  # the upsert locked the row: it cannot have gone
        raise LookupError("the upserted customer vanished")
    return Upserted(Customer.from_row(existing), created=False, updated=False)


def _upsert_params(tenant_id: uuid.UUID, given: CustomerInput, default_phone_number: str | None) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "id": uuid.uuid4(),
        "whatsapp_id": given.whatsapp_id,
        "phone_number": given.phone_number,
        "default_phone_number": default_phone_number,
        "name": given.name,
        "name_search": None if given.name is None else search_key(given.name),
        "profile_picture_url": given.profile_picture_url,
        "preferences": _jsonb(given.preferences),
        "metadata": _jsonb(given.metadata),
    }


async def queue_recent(
    conn: Connection,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    conversation_limit: int,
    conversation_id: uuid.UUID,
    message_limit: int,
) -> tuple[Cursor, Cursor]:
    """Sends the reads of the customer's newest conversations (as conversations.list_page) and the last messages of
    `conversation_id` (as messages.last) inside the caller's pipeline; `recent_from` reads them once it has synced."""
    filters = conversations.Filter(customer_id=customer_id)
    params = {"tenant_id": tenant_id, "conversation_id": conversation_id, "limit": message_limit}
    listed = await conn.execute(
        conversation_store.Q["list_conversations"],
        conversation_store.list_params(tenant_id, filters, None, conversation_limit),
    )
    return listed, await conn.execute(message_store.Q["last_messages"], params)


async def recent_from(reading: tuple[Cursor, Cursor]) -> tuple[list[conversations.Conversation], list[Message]]:
    listed, last = reading
    recent_ = [conversations.Conversation.from_row(row) for row in await listed.fetchall()]
    return recent_, [Message.from_row(row) for row in await last.fetchall()]


async def get(source: Connection | Database, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> Customer | None:
    return await _one_or_none(source, "get_by_id", {"tenant_id": tenant_id, "id": customer_id})


async def lock(conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> Customer | None:
    """The customer, locked against other writers until commit."""
    return await _one_or_none(conn, "lock_by_id", {"tenant_id": tenant_id, "id": customer_id})


async def get_by_whatsapp_id(source: Connection | Database, tenant_id: uuid.UUID, whatsapp_id: str) -> Customer | None:
    return await _one_or_none(source, "get_by_whatsapp_id", {"tenant_id": tenant_id, "whatsapp_id": whatsapp_id})


async def get_by_phone_number(
    source: Connection | Database, tenant_id: uuid.UUID, phone_number: str
) -> Customer | None:
    """The customer with this E.164 number (the most recently updated one if several share it)."""
    params = {"tenant_id": tenant_id, "phone_number": phone_number}
    return await _one_or_none(source, "get_by_phone_number", params)


async def search_by_name(conn: Connection, tenant_id: uuid.UUID, key: str, page: Page) -> list[Customer]:
    """Customers with a word of the folded name starting with `key` (folded), by folded name then id."""
    low, high = name_range(key)
    params = {"tenant_id": tenant_id, "low": low, "high": high, **_page(page)}
    return await _all(conn, "search_by_name", params)


async def search_by_phone_prefix(conn: Connection, tenant_id: uuid.UUID, prefix: str, page: Page) -> list[Customer]:
    """Customers whose E.164 number starts with `prefix` ("+" and digits), by number then id."""
    params = {
        "tenant_id": tenant_id,
        "prefix": prefix,
        "prefix_end": prefix[:-1] + chr(ord(prefix[-1]) + 1),
        **_page(page),
    }
    return await _all(conn, "search_by_phone_prefix", params)


async def update(
    conn: Connection,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    changes: dict[str, Any],
    expected_version: int | None,
) -> Customer | None:
    """Sets `changes` (keys: domain.customers.UPDATABLE_FIELDS); None if missing or the version moved on."""
    params: dict[str, Any] = {"tenant_id": tenant_id, "id": customer_id, "expected_version": expected_version}
    for field in ("phone_number", "name", "profile_picture_url", "preferences", "metadata"):
        params[f"set_{field}"] = field in changes
        value = changes.get(field)
        params[field] = _jsonb(value) if field in ("preferences", "metadata") else value
    params["name_search"] = search_key(changes.get("name") or "")
    return await _one_or_none(conn, "update_customer", params)


async def open_conversation(
    conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> conversations.Conversation | None:
    """The customer's open conversation with the latest activity, if any."""
    params = {"tenant_id": tenant_id, "customer_id": customer_id}
    row = await (await conn.execute(Q["open_conversation"], params)).fetchone()
    return conversations.Conversation.from_row(row) if row else None


async def assignments(
    conn: Connection, tenant_id: uuid.UUID, conversation_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Assignment]]:
    """The assignments of each conversation, oldest first."""
    params = {"tenant_id": tenant_id, "conversation_ids": conversation_ids}
    result: dict[uuid.UUID, list[Assignment]] = {ident: [] for ident in conversation_ids}
    for row in await (await conn.execute(Q["assignments"], params)).fetchall():
        result[row["conversation_id"]].append(Assignment.from_row(row))
    return result


def _page(page: Page) -> dict[str, Any]:
    return {"limit": page.limit, "after_key": page.after_key, "after_id": page.after_id}


def _jsonb(value: dict[str, Any] | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


async def _one_or_none(source: Connection | Database, query: str, params: dict[str, Any]) -> Customer | None:
    row = await first_row(source, Q[query], params)
    return Customer.from_row(row) if row else None


async def _all(conn: Connection, query: str, params: dict[str, Any]) -> list[Customer]:
    rows = await (await conn.execute(Q[query], params)).fetchall()
    return [Customer.from_row(row) for row in rows]
