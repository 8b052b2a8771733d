"""Conversation use cases: each runs in one tenant transaction and writes its event to the outbox in it.

Writers lock the conversation row first (SELECT ... FOR NO KEY UPDATE), so concurrent writes to one conversation
queue up: a caller whose etag went stale meanwhile gets ABORTED, one whose move became illegal FAILED_PRECONDITION.
Creates race on the unique indexes instead: exactly one insert wins, the others find the winner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncGenerator

from statemgr import metrics
from statemgr.cache import Cache, Kind, keys
from statemgr.domain import conversations as domain
from statemgr.domain import paging
from statemgr.domain.errors import Aborted, AlreadyExists, InvalidArgument, NotFound
from statemgr.domain.events import Event, EventType
from statemgr.domain.paging import Page, PageRequest
from statemgr.events import outbox
from statemgr.services import customers
from statemgr.store import conversations as store
from statemgr.store.db import Connection, Database, Statement

Created = tuple[domain.Conversation, str | None]


class ConversationService:
    """Every ConversationService RPC, in domain terms. `tenant_id` always comes from the caller's API key."""

    def __init__(self, db: Database, cache: Cache) -> None:
        self._db = db
        self._cache = cache

    async def create(self, tenant_id: uuid.UUID, new: domain.NewConversation) -> domain.Conversation:
        """A new ACTIVE conversation; with a used request_id, the conversation that request created.

        The usual case, nothing in the way, is one round trip; a conflict is then looked into in a second
        transaction (which may find the way free by then, and create).
        """
        conversation: domain.Conversation | None = await store.insert_once(
            self._db, tenant_id, insert_statement(tenant_id, new)
        )
        conflict = None
        if conversation is None:
            metrics.GENERAL_PATH.labels("CreateConversation", "conflict").inc()
            async with self._db.tenant(tenant_id) as conn:
                conversation, conflict = await create_in(conn, tenant_id, new)
        if conflict is None:  # a cached "not found" for its ids must go
            await invalidate(self._cache, tenant_id, conversation)
        if conflict is not None and conflict != "request_id":
            raise _already_exists(conversation, conflict)
        return conversation

    async def get(self, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> domain.Conversation:
        return _found(await store.get(self._db, tenant_id, conversation_id), conversation_id)

    async def lookup_by_whatsapp_id(self, tenant_id: uuid.UUID, whatsapp_id: str) -> domain.Conversation:
        found = await store.lookup_by_whatsapp_id(self._db, tenant_id, whatsapp_id)
        if found is None:
            raise NotFound("conversation with WhatsApp conversation id", whatsapp_id)
        return found

    async def lookup_by_genesys_id(self, tenant_id: uuid.UUID, genesys_id: str) -> domain.Conversation:
        found = await store.lookup_by_genesys_id(self._db, tenant_id, genesys_id)
        if found is None:
            raise NotFound("conversation with Genesys conversation id", genesys_id)
        return found

    async def list(self, tenant_id: uuid.UUID, filters: domain.Filter, page: PageRequest) -> Page[domain.Conversation]:
        query = paging.fingerprint("ListConversations", **filters.fingerprint_fields())
        after = domain.conversation_position(paging.decode(page.token, str(tenant_id), query))
        async with self._db.tenant(tenant_id) as conn:
            rows = await store.list_page(conn, tenant_id, filters, after, page.size + 1)
        return paging.page_of(rows, page.size, str(tenant_id), query, lambda c: c.position())

    async def search(
        self, tenant_id: uuid.UUID, criteria: domain.Criteria, page: PageRequest
    ) -> Page[domain.Conversation]:
        """`criteria.customer_phone_number` may be in any format; it is read with the tenant's default region."""
        async with self._db.tenant(tenant_id) as conn:
            criteria = await _normalized_phone(conn, tenant_id, criteria)
            query = paging.fingerprint("SearchConversations", **criteria.fingerprint_fields())
            after = domain.conversation_position(paging.decode(page.token, str(tenant_id), query))
            rows = await store.search_page(conn, tenant_id, criteria, after, page.size + 1)
        return paging.page_of(rows, page.size, str(tenant_id), query, lambda c: c.position())

    async def update(
        self, tenant_id: uuid.UUID, conversation_id: uuid.UUID, changes: domain.Changes, etag: int | None
    ) -> domain.Conversation:
        """Replaces the metadata and/or maps a new Genesys id; a change to nothing writes nothing."""
        async with self._db.tenant(tenant_id) as conn:
            current = await _locked(conn, tenant_id, conversation_id)
            domain.check_etag(current, etag)
            domain.check_open(current)
            effective = changes.apply_to(current)
            if effective.empty:
                return current
            updated = await store.update(conn, tenant_id, current, effective)
            if effective.genesys_conversation_id is not None:
                await outbox.append(conn, tenant_id, _event(EventType.CONVERSATION_GENESYS_MAPPING_CHANGED, updated))
        await invalidate(self._cache, tenant_id, updated)
        return updated

    async def transition(
        self,
        tenant_id: uuid.UUID,
        conversation_id: uuid.UUID,
        target: domain.State,
        reason: str,
        etag: int | None = None,
    ) -> domain.Conversation:
        """Moves the conversation along the state machine; a closure is reported as conversation.closed.

        A move to the state the conversation is in already (a transformer resending "agent joined", a retry whose
        first answer was lost) answers the conversation as it is: no write, no event, no history entry, whatever
        the reason, since what the caller asked for holds. An etag, when sent, is checked first all the same: it
        says "only if nothing changed since I read", and something did.
        """
        async with self._db.tenant(tenant_id) as conn:
            current = await _locked(conn, tenant_id, conversation_id)
            domain.check_etag(current, etag)
            if domain.already_in(current, target):
                return current
            domain.check_move(current.state, target)
            moved = await store.set_state(conn, tenant_id, current, target, reason)
            await outbox.append(conn, tenant_id, _event(_state_event_type(target), moved))
        await invalidate(self._cache, tenant_id, moved)
        return moved

    async def close(self, tenant_id: uuid.UUID, conversation_id: uuid.UUID, reason: str) -> domain.Conversation:
        return await self.transition(tenant_id, conversation_id, domain.State.CLOSED, reason)

    async def transfer(
        self, tenant_id: uuid.UUID, conversation_id: uuid.UUID, agent_id: uuid.UUID, reason: str
    ) -> domain.Conversation:
        """Assigns the conversation to `agent_id`; a transfer to the agent it has already is a no-op (retry-safe)."""
        async with self._db.tenant(tenant_id) as conn:
            current = await _locked(conn, tenant_id, conversation_id)
            domain.check_open(current)
            if current.agent_id == agent_id:
                return current
            moved = await store.assign_agent(conn, tenant_id, current, agent_id, reason)
            await outbox.append(conn, tenant_id, _event(EventType.CONVERSATION_TRANSFERRED, moved))
        await invalidate(self._cache, tenant_id, moved)
        return moved

    async def history(
        self, tenant_id: uuid.UUID, conversation_id: uuid.UUID, page: PageRequest
    ) -> Page[domain.HistoryEntry]:
        query = paging.fingerprint("GetConversationHistory", conversation_id=str(conversation_id))
        after = domain.history_position(paging.decode(page.token, str(tenant_id), query))
        async with self._db.tenant(tenant_id) as conn:
            _found(await store.get(conn, tenant_id, conversation_id), conversation_id)
            entries = await store.history_page(conn, tenant_id, conversation_id, after, page.size + 1)
        return paging.page_of(entries, page.size, str(tenant_id), query, lambda e: e.position())


async def recently_active(
    db: Database, since: dt.datetime, limit: int
) -> AsyncGenerator[tuple[uuid.UUID, domain.Conversation], None]:
    """(tenant id, conversation) of every tenant's open conversations active since `since`, newest activity first,
    at most `limit`: the cache warm-up's source. The only read across tenants (see sql/0009)."""
    async with db.untenanted() as conn, contextlib.aclosing(store.recently_active(conn, since, limit)) as rows:
        async for found in rows:  # aclosing: the cursor closes before the connection goes back to the pool
            yield found


async def invalidate(
    cache: Cache, tenant_id: uuid.UUID, conversation: domain.Conversation, *, routes: bool = True
) -> None:
    """Drops every cached copy of `conversation` after a committed write (its previous Genesys ids included).

    `routes=False` keeps ResolveOutbound's routes of its Genesys ids: for a write that changes none of what a route
    holds (conversation id, WhatsApp conversation id, customer id), such as a message's activity. Otherwise every
    outbound message would evict the route the next one needs.
    """
    genesys_ids = [conversation.genesys_conversation_id or "", *conversation.previous_genesys_conversation_ids]
    found = keys.conversation_keys(tenant_id, conversation.id, conversation.whatsapp_conversation_id, genesys_ids)
    await cache.invalidate(tenant_id, found if routes else [key for key in found if key.kind is not Kind.MAPPING])


async def create_in(conn: Connection, tenant_id: uuid.UUID, new: domain.NewConversation) -> Created:
    """Creates a conversation (and its event) inside the caller's transaction, or finds the one in the way.

    Returns the conversation and None when it was created, else the conversation holding a key `new` wants and the
    key: "request_id" (a retry: the conversation that request made), "whatsapp_conversation_id" (the open one for
    that WhatsApp id: ResolveInbound uses it as is) or "genesys_conversation_id".
    """
    created = await store.insert(conn, insert_statement(tenant_id, new))
    if created is not None:
        return created, None
    found = await store.find_conflict(conn, tenant_id, new)
    if found is None:  # the conversation in the way was closed between our insert and this read
        raise Aborted("a concurrent change to a conflicting conversation won; retry")
    conflict, existing = found
    if conflict == "request_id" and existing.whatsapp_conversation_id != new.whatsapp_conversation_id:
        raise InvalidArgument("request_id", f"was used to create conversation {existing.id} for another WhatsApp id")
    return existing, conflict


async def _locked(conn: Connection, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> domain.Conversation:
    return _found(await store.lock(conn, tenant_id, conversation_id), conversation_id)


async def _normalized_phone(conn: Connection, tenant_id: uuid.UUID, criteria: domain.Criteria) -> domain.Criteria:
    raw = criteria.customer_phone_number
    if raw is None:
        return criteria
    phone = await customers.normalized_phone(conn, tenant_id, raw, "customer_phone_number")
    return dataclasses.replace(criteria, customer_phone_number=phone)


def _found(conversation: domain.Conversation | None, conversation_id: uuid.UUID) -> domain.Conversation:
    if conversation is None:
        raise NotFound("conversation", str(conversation_id))
    return conversation


def _already_exists(existing: domain.Conversation, key: str) -> AlreadyExists:
    value = existing.whatsapp_conversation_id if key == "whatsapp_conversation_id" else existing.genesys_conversation_id
    message = f"conversation {existing.id} is open for {key} {value!r}; close it first or use it"
    return AlreadyExists("conversation", message, existing_id=str(existing.id))


def insert_statement(tenant_id: uuid.UUID, new: domain.NewConversation) -> Statement:
    """The INSERT of `new` under a fresh id, with its conversation.created event (the same statement writes it)."""
    conversation_id = uuid.uuid4()
    created = Event(
        type=EventType.CONVERSATION_CREATED,
        conversation_id=conversation_id,
        customer_id=new.customer_id,
        conversation_state=domain.State.ACTIVE.value,
        agent_id=new.agent_id,
        genesys_conversation_id=new.genesys_conversation_id or "",
    )
    return store.insert_statement(tenant_id, new, conversation_id, created)


def _state_event_type(target: domain.State) -> EventType:
    if target is domain.State.CLOSED:
        return EventType.CONVERSATION_CLOSED
    return EventType.CONVERSATION_STATE_CHANGED


def _event(event_type: EventType, conversation: domain.Conversation) -> Event:
    """An event carrying the conversation's ids and state: never metadata, which may hold personal data."""
    return Event(
        type=event_type,
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        conversation_state=conversation.state.value,
        agent_id=conversation.agent_id,
        genesys_conversation_id=conversation.genesys_conversation_id or "",
        at=conversation.closed_at or conversation.last_activity,
    )
