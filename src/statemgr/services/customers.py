"""Customer use cases: each runs in one tenant transaction and writes its event to the outbox in it.

Phone numbers are read with the tenant's default region (tenants.default_region) when they are not in + form.
Events carry the customer's id only: never the phone number or the name. Every write invalidates the customer's
cache keys after its commit (by id, WhatsApp id, and the phone numbers before and after).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any, Final

from statemgr.cache import Cache, keys
from statemgr.domain import customers as domain
from statemgr.domain import paging, phones
from statemgr.domain.conversations import Conversation, Filter, State, conversation_position
from statemgr.domain.errors import Aborted, InvalidArgument, NotFound
from statemgr.domain.events import Event, EventType
from statemgr.domain.paging import Page, PageRequest
from statemgr.events import outbox
from statemgr.store import conversations as conversation_store
from statemgr.store import customers as store
from statemgr.store import messages as message_store
from statemgr.store import tenants as tenant_store
from statemgr.store.customers import Upserted
from statemgr.store.db import Connection, Database

RECENT_CONVERSATIONS = (5, 50)
RECENT_MESSAGES = (20, 200)
# A tenant's default region is fixed when the tenant is created (no RPC changes it), so each process remembers it:
# a national number is then normalised without a query, as a cached LookupCustomer by phone needs.
_REGIONS: dict[uuid.UUID, str] = {}
_MAX_REGIONS: Final = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class ContextRequest:
    """Who (customer id or WhatsApp id, exactly one) and how much context."""

    customer_id: uuid.UUID | None
    whatsapp_id: str | None
    conversation_limit: int = RECENT_CONVERSATIONS[0]
    message_limit: int = RECENT_MESSAGES[0]


class CustomerService:
    """Every implemented CustomerService RPC, in domain terms. `tenant_id` always comes from the caller's API key."""

    def __init__(self, db: Database, cache: Cache) -> None:
        self._db = db
        self._cache = cache

    async def upsert(self, tenant_id: uuid.UUID, given: domain.CustomerInput) -> Upserted:
        async with self._db.tenant(tenant_id) as conn:
            result = await upsert_in(conn, tenant_id, given, "customer.phone_number")
        await invalidate_upserted(self._cache, tenant_id, result)
        return result

    async def find(self, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> domain.Customer | None:
        return await store.get(self._db, tenant_id, customer_id)

    async def find_by_whatsapp_id(self, tenant_id: uuid.UUID, whatsapp_id: str) -> domain.Customer | None:
        return await store.get_by_whatsapp_id(self._db, tenant_id, whatsapp_id)

    async def find_by_phone_number(self, tenant_id: uuid.UUID, e164: str) -> domain.Customer | None:
        """The customer with this number, already in E.164 (see `e164`)."""
        return await store.get_by_phone_number(self._db, tenant_id, e164)

    async def e164(self, tenant_id: uuid.UUID, raw: str, field: str) -> str:
        """`raw` in E.164; a national number is read with the tenant's default region (asked once per process)."""
        if not domain.needs_region(raw) or tenant_id in _REGIONS:
            return domain.phone_number(raw, _REGIONS.get(tenant_id), field)
        async with self._db.tenant(tenant_id) as conn:
            return await normalized_phone(conn, tenant_id, raw, field)

    async def search_by_name(self, tenant_id: uuid.UUID, key: str, page: PageRequest) -> Page[domain.Customer]:
        """Customers a word of whose name starts with `key` (already folded by domain.customers.name_query)."""
        query = paging.fingerprint("SearchCustomers", name=key)
        after = _position(paging.decode(page.token, str(tenant_id), query))
        async with self._db.tenant(tenant_id) as conn:
            rows = await store.search_by_name(conn, tenant_id, key, _store_page(page, after))
        return paging.page_of(rows, page.size, str(tenant_id), query, lambda c: [domain.search_key(c.name), str(c.id)])

    async def search_by_phone_prefix(
        self, tenant_id: uuid.UUID, raw_prefix: str, page: PageRequest
    ) -> Page[domain.Customer]:
        prefix = _phone_prefix(raw_prefix, "phone_prefix")
        query = paging.fingerprint("SearchCustomers", phone_prefix=prefix)
        after = _position(paging.decode(page.token, str(tenant_id), query))
        async with self._db.tenant(tenant_id) as conn:
            rows = await store.search_by_phone_prefix(conn, tenant_id, prefix, _store_page(page, after))
        return paging.page_of(rows, page.size, str(tenant_id), query, lambda c: [c.phone_number or "", str(c.id)])

    async def update(
        self, tenant_id: uuid.UUID, customer_id: uuid.UUID, changes: dict[str, Any], etag: int | None
    ) -> domain.Customer:
        """Sets `changes` (checked by the api layer; phone_number still raw, "" clears it)."""
        async with self._db.tenant(tenant_id) as conn:
            changes = await _normalized_changes(conn, tenant_id, changes)
            current = _found(await store.lock(conn, tenant_id, customer_id), str(customer_id))
            updated = await store.update(conn, tenant_id, customer_id, changes, etag)
            if updated is None:  # the row is locked: only the etag can have refused the update
                raise Aborted("the customer changed since the etag was read; read it again and retry")
            await outbox.append(conn, tenant_id, _event(EventType.CUSTOMER_UPDATED, updated))
        await invalidate(self._cache, tenant_id, updated, [current.phone_number])
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
        return paging.page_of(entries, page.size, str(tenant_id), query, lambda e: e.conversation.position())


async def upsert_in(conn: Connection, tenant_id: uuid.UUID, given: domain.CustomerInput, phone_field: str) -> Upserted:
    """Creates or updates the customer of `given.whatsapp_id` inside the caller's transaction, with its event.

    `given.phone_number` is raw (INVALID_ARGUMENT on `phone_field` when it is not a valid number); when neither it
    nor the stored profile has a number, the WhatsApp id read as an international number fills it, if valid.
    After the commit, the caller passes the result to `invalidate_upserted`.
    """
    given, default_phone = await upsert_input(conn, tenant_id, given, phone_field)
    result = await store.upsert(conn, tenant_id, given, default_phone)
    event = upsert_event(result)
    if event is not None:
        await outbox.append(conn, tenant_id, event)
    return result


async def upsert_input(
    conn: Connection, tenant_id: uuid.UUID, given: domain.CustomerInput, phone_field: str
) -> tuple[domain.CustomerInput, str | None]:
    """`given` with its phone number in E.164 (see `upsert_in`), and the default number for store.upsert."""
    if given.phone_number:
        phone = await normalized_phone(conn, tenant_id, given.phone_number, phone_field)
        given = dataclasses.replace(given, phone_number=phone)
    else:
        given = dataclasses.replace(given, phone_number=None)
    # a given number leaves the default unused (see customers.sql's upsert_customer): no need to parse the id
    return given, None if given.phone_number else domain.phone_from_whatsapp_id(given.whatsapp_id)


def upsert_event(result: Upserted) -> Event | None:
    """The event of an upsert that created or changed the customer; None for one that changed nothing."""
    if result.created:
        return _event(EventType.CUSTOMER_CREATED, result.customer)
    return _event(EventType.CUSTOMER_UPDATED, result.customer) if result.updated else None


async def normalized_phone(conn: Connection, tenant_id: uuid.UUID, raw: str, field: str) -> str:
    """`raw` in E.164; a number not in + form is read with the tenant's default region."""
    region = await _region(conn, tenant_id) if domain.needs_region(raw) else None
    return domain.phone_number(raw, region, field)


async def invalidate(
    cache: Cache, tenant_id: uuid.UUID, customer: domain.Customer, previous_phones: Iterable[str | None] = ()
) -> None:
    """Drops every cached copy of `customer` after a committed write: by id, by WhatsApp id, and by its phone number
    and each number it had before the write (a lookup by an old number must not find it any more)."""
    phones_ = dict.fromkeys([customer.phone_number or "", *(phone or "" for phone in previous_phones)])
    await cache.invalidate(tenant_id, keys.customer_keys(tenant_id, customer.id, customer.whatsapp_id, phones_))


async def invalidate_upserted(cache: Cache, tenant_id: uuid.UUID, result: Upserted) -> None:
    """`invalidate` after a committed upsert that created or changed the customer (a repeat changes nothing).

    A creation invalidates too: "not found" answers for its WhatsApp id and number are cached for a few seconds.
    """
    if result.created or result.updated:
        await invalidate(cache, tenant_id, result.customer, [result.previous_phone_number])


async def _normalized_changes(conn: Connection, tenant_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` with the phone number in E.164 (None where "" clears it)."""
    if changes.get("phone_number"):
        phone = await normalized_phone(conn, tenant_id, changes["phone_number"], "customer.phone_number")
        return {**changes, "phone_number": phone}
    if "phone_number" in changes:
        return {**changes, "phone_number": None}
    return changes


async def _region(conn: Connection, tenant_id: uuid.UUID) -> str | None:
    region = _REGIONS.get(tenant_id)
    if region is None:
        tenant = await tenant_store.get_tenant(conn)
        if tenant is None:
            return None
        if len(_REGIONS) >= _MAX_REGIONS:
            _REGIONS.clear()
        region = _REGIONS[tenant_id] = tenant.default_region
    return region


async def context_in(
    conn: Connection,
    tenant_id: uuid.UUID,
    customer: domain.Customer,
    conversation_limit: int,
    message_limit: int,
    open_conversation: Conversation | None = None,
) -> domain.Context:
    """The customer's context, read inside the caller's transaction (`open_conversation` when already known)."""
    if open_conversation is not None:  # its messages are the ones to show: one round trip reads both
        async with conn.pipeline():
            reading = await store.queue_recent(
                conn, tenant_id, customer.id, conversation_limit, open_conversation.id, message_limit
            )
        recent, messages = await store.recent_from(reading)
        return domain.Context(customer, open_conversation, recent, messages)
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


def _found(customer: domain.Customer | None, key: str) -> domain.Customer:
    if customer is None:
        raise NotFound("customer", key)
    return customer


def _event(event_type: EventType, customer: domain.Customer) -> Event:
    return Event(type=event_type, customer_id=customer.id, at=customer.created_at)
