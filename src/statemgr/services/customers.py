"""Customer use cases: each runs in one tenant transaction and writes its event to the outbox in it.

Phone numbers are read with the tenant's default region (tenants.default_region) when they are not in + form.
Events carry the customer's id only: never the phone number or the name.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from statemgr.domain import customers as domain
from statemgr.domain import paging, phones
from statemgr.domain.conversations import Conversation, Filter, State, conversation_position
from statemgr.domain.errors import Aborted, InvalidArgument, NotFound
from statemgr.domain.events import Event, EventType
from statemgr.events import outbox
from statemgr.services.conversations import Page, PageRequest
from statemgr.store import conversations as conversation_store
from statemgr.store import customers as store
from statemgr.store import messages as message_store
from statemgr.store import tenants as tenant_store
from statemgr.store.customers import Upserted
from statemgr.store.db import Connection, Database

T = TypeVar("T")
RECENT_CONVERSATIONS = (5, 50)
RECENT_MESSAGES = (20, 200)


@dataclasses.dataclass(frozen=True, slots=True)
class ContextRequest:
    """Who (customer id or WhatsApp id, exactly one) and how much context."""

    customer_id: uuid.UUID | None
    whatsapp_id: str | None
    conversation_limit: int = RECENT_CONVERSATIONS[0]
    message_limit: int = RECENT_MESSAGES[0]


class CustomerService:
    """Every implemented CustomerService RPC, in domain terms. `tenant_id` always comes from the caller's API key."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert(self, tenant_id: uuid.UUID, given: domain.CustomerInput) -> Upserted:
        async with self._db.tenant(tenant_id) as conn:
            return await upsert_in(conn, tenant_id, given, "customer.phone_number")

    async def get(self, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> domain.Customer:
        async with self._db.tenant(tenant_id) as conn:
            return _found(await store.get(conn, tenant_id, customer_id), str(customer_id))

    async def lookup_by_whatsapp_id(self, tenant_id: uuid.UUID, whatsapp_id: str) -> domain.Customer:
        async with self._db.tenant(tenant_id) as conn:
            found = await store.get_by_whatsapp_id(conn, tenant_id, whatsapp_id)
        return _found(found, "with this WhatsApp id")

    async def lookup_by_phone_number(self, tenant_id: uuid.UUID, raw: str) -> domain.Customer:
        """`raw` in any format; a national one is read with the tenant's default region."""
        async with self._db.tenant(tenant_id) as conn:
            phone = await normalized_phone(conn, raw, "phone_number")
            found = await store.get_by_phone_number(conn, tenant_id, phone)
        return _found(found, "with this phone number")

    async def search_by_name(self, tenant_id: uuid.UUID, key: str, page: PageRequest) -> Page[domain.Customer]:
        """Customers a word of whose name starts with `key` (already folded by domain.customers.name_query)."""
        query = paging.fingerprint("SearchCustomers", name=key)
        after = _position(paging.decode(page.token, str(tenant_id), query))
        async with self._db.tenant(tenant_id) as conn:
            rows = await store.search_by_name(conn, tenant_id, key, _store_page(page, after))
        return _page(rows, page.size, str(tenant_id), query, lambda c: [domain.search_key(c.name), str(c.id)])

    async def search_by_phone_prefix(
        self, tenant_id: uuid.UUID, raw_prefix: str, page: PageRequest
    ) -> Page[domain.Customer]:
        prefix = _phone_prefix(raw_prefix, "phone_prefix")
        query = paging.fingerprint("SearchCustomers", phone_prefix=prefix)
        after = _position(paging.decode(page.token, str(tenant_id), query))
        async with self._db.tenant(tenant_id) as conn:
            rows = await store.search_by_phone_prefix(conn, tenant_id, prefix, _store_page(page, after))
        return _page(rows, page.size, str(tenant_id), query, lambda c: [c.phone_number or "", str(c.id)])

    async def update(
        self, tenant_id: uuid.UUID, customer_id: uuid.UUID, changes: dict[str, Any], etag: int | None
    ) -> domain.Customer:
        """Sets `changes` (checked by the api layer; phone_number still raw, "" clears it)."""
        async with self._db.tenant(tenant_id) as conn:
            if changes.get("phone_number"):
                phone = await normalized_phone(conn, changes["phone_number"], "customer.phone_number")
                changes = {**changes, "phone_number": phone}
            elif "phone_number" in changes:
                changes = {**changes, "phone_number": None}
            updated = await store.update(conn, tenant_id, customer_id, changes, etag)
            if updated is None:
                await _why_not_updated(conn, tenant_id, customer_id)
            await outbox.append(conn, tenant_id, _event(EventType.CUSTOMER_UPDATED, updated))
        return updated

    async def context(self, tenant_id: uuid.UUID, request: ContextRequest) -> domain.Context:
        async with self._db.tenant(tenant_id) as conn:
            customer = await _customer_of(conn, tenant_id, request)
            return await context_in(conn, tenant_id, customer, request.conversation_limit, request.message_limit)

    async def history(
        self, tenant_id: uuid.UUID, customer_id: uuid.UUID, page: PageRequest
    ) -> Page[domain.HistoryEntry]:
        """The customer's conversations, newest first, each with its assignments."""
        query = paging.fingerprint("GetCustomerHistory", customer_id=str(customer_id))
        after = conversation_position(paging.decode(page.token, str(tenant_id), query))
        async with self._db.tenant(tenant_id) as conn:
            _found(await store.get(conn, tenant_id, customer_id), str(customer_id))
            rows = await conversation_store.list_page(
                conn, tenant_id, Filter(customer_id=customer_id), after, page.size + 1
            )
            assignments = await store.assignments(conn, tenant_id, [c.id for c in rows[: page.size]])
        entries = [domain.HistoryEntry(c, assignments.get(c.id, [])) for c in rows]
        return _page(entries, page.size, str(tenant_id), query, lambda e: e.conversation.position())


async def upsert_in(conn: Connection, tenant_id: uuid.UUID, given: domain.CustomerInput, phone_field: str) -> Upserted:
    """Creates or updates the customer of `given.whatsapp_id` inside the caller's transaction, with its event.

    `given.phone_number` is raw (INVALID_ARGUMENT on `phone_field` when it is not a valid number); when neither it
    nor the stored profile has a number, the WhatsApp id read as an international number fills it, if valid.
    """
    if given.phone_number:
        given = dataclasses.replace(given, phone_number=await normalized_phone(conn, given.phone_number, phone_field))
    else:
        given = dataclasses.replace(given, phone_number=None)
    result = await store.upsert(conn, tenant_id, given, domain.phone_from_whatsapp_id(given.whatsapp_id))
    if result.created or result.updated:
        event_type = EventType.CUSTOMER_CREATED if result.created else EventType.CUSTOMER_UPDATED
        await outbox.append(conn, tenant_id, _event(event_type, result.customer))
    return result


async def normalized_phone(conn: Connection, raw: str, field: str) -> str:
    """`raw` in E.164; a number not in + form is read with the tenant's default region."""
    region = None
    if domain.needs_region(raw):
        tenant = await tenant_store.get_tenant(conn)
        region = tenant.default_region if tenant else None
    return domain.phone_number(raw, region, field)


async def context_in(
    conn: Connection,
    tenant_id: uuid.UUID,
    customer: domain.Customer,
    conversation_limit: int,
    message_limit: int,
    open_conversation: Conversation | None = None,
) -> domain.Context:
    """The customer's context, read inside the caller's transaction (`open_conversation` when already known)."""
    recent = await conversation_store.list_page(
        conn, tenant_id, Filter(customer_id=customer.id), None, conversation_limit
    )
    if open_conversation is None:
        open_conversation = await _open_conversation(conn, tenant_id, customer.id, recent, conversation_limit)
    latest = open_conversation or (recent[0] if recent else None)
    messages = [] if latest is None else await message_store.last(conn, tenant_id, latest.id, message_limit)
    return domain.Context(customer, open_conversation, recent, messages)


async def _open_conversation(
    conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID, recent: list[Conversation], limit: int
) -> Conversation | None:
    """The open one among the recent conversations; asks the database only when older ones may hide one."""
    for conversation in recent:
        if conversation.state is not State.CLOSED:
            return conversation
    if len(recent) < limit:
        return None
    return await store.open_conversation(conn, tenant_id, customer_id)


async def _customer_of(conn: Connection, tenant_id: uuid.UUID, request: ContextRequest) -> domain.Customer:
    if request.customer_id is not None:
        return _found(await store.get(conn, tenant_id, request.customer_id), str(request.customer_id))
    found = await store.get_by_whatsapp_id(conn, tenant_id, request.whatsapp_id or "")
    return _found(found, "with this WhatsApp id")


async def _why_not_updated(conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> NoReturn:
    _found(await store.get(conn, tenant_id, customer_id), str(customer_id))
    raise Aborted("the customer changed since the etag was read; read it again and retry")


def _phone_prefix(raw: str, field: str) -> str:
    try:
        return phones.normalize_prefix(raw)
    except phones.InvalidPhoneNumber as exc:
        raise InvalidArgument(field, exc.reason) from None


def _position(position: list[Any] | None, field: str = "page_token") -> tuple[str, uuid.UUID] | None:
    if position is None:
        return None
    try:
        key, ident = position
        if not isinstance(key, str):
            raise TypeError
        return key, uuid.UUID(ident)
    except (TypeError, ValueError):
        raise InvalidArgument(field, "is malformed") from None


def _store_page(page: PageRequest, after: tuple[str, uuid.UUID] | None) -> store.Page:
    key, ident = after or (None, None)
    return store.Page(limit=page.size + 1, after_key=key, after_id=ident)


def _page(items: Sequence[T], size: int, tenant: str, query: str, position: Callable[[T], list[Any]]) -> Page[T]:
    """The first `size` items; a token for the next page when the query returned more (it asks for size + 1)."""
    shown = list(items[:size])
    token = paging.encode(tenant, query, position(shown[-1])) if len(items) > size and shown else ""
    return Page(shown, token)


def _found(customer: domain.Customer | None, key: str) -> domain.Customer:
    if customer is None:
        raise NotFound("customer", key)
    return customer


def _event(event_type: EventType, customer: domain.Customer) -> Event:
    return Event(type=event_type, customer_id=customer.id)
