"""CustomerService: proto <-> domain, nothing else. The tenant comes from the caller's API key only.

EraseCustomer (GDPR) is statemgr.jobs.erasure's; the audit records the calling API key's id.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from statemgr.api import convert, principal
from statemgr.api.conversations import to_proto as conversation_proto
from statemgr.api.messages import message_proto
from statemgr.app import App
from statemgr.cache import Cache, Key, keys
from statemgr.domain import customers as domain
from statemgr.domain import validation
from statemgr.domain.errors import InvalidArgument, NotFound
from statemgr.domain.paging import PageRequest
from statemgr.jobs.archive_store import ArchiveStore
from statemgr.jobs.erasure import Eraser
from statemgr.services.customers import RECENT_CONVERSATIONS, RECENT_MESSAGES, ContextRequest, CustomerService
from statemgr.v1 import conversation_pb2, customer_pb2
from statemgr.v1 import customer_service_pb2 as svc
from statemgr.v1 import customer_service_pb2_grpc as svc_grpc

PAGE_SIZE = (50, 500)
Finder = Callable[[], Awaitable[domain.Customer | None]]


class CustomerServicer(svc_grpc.CustomerServiceServicer):
    def __init__(self, app: App) -> None:
        self._service = CustomerService(app.db, app.cache)
        self._cache = app.cache
        self._eraser = Eraser(app.db, app.cache, ArchiveStore.from_settings(app.settings))

    async def UpsertCustomer(
        self, request: svc.UpsertCustomerRequest, context: grpc.aio.ServicerContext
    ) -> svc.UpsertCustomerResponse:
        tenant_id = principal.tenant_id()
        result = await self._service.upsert(tenant_id, _customer_input(request.customer))
        return svc.UpsertCustomerResponse(customer=customer_proto(result.customer), created=result.created)

    async def GetCustomer(
        self, request: svc.GetCustomerRequest, context: grpc.aio.ServicerContext
    ) -> svc.GetCustomerResponse:
        tenant_id = principal.tenant_id()
        customer_id = validation.parse_uuid(request.customer_id, "customer_id")
        found = await cached_customer(self._cache, self._service, tenant_id, customer_id)
        if found is None:
            raise NotFound("customer", str(customer_id))
        return svc.GetCustomerResponse(customer=found)

    async def LookupCustomer(
        self, request: svc.LookupCustomerRequest, context: grpc.aio.ServicerContext
    ) -> svc.LookupCustomerResponse:
        tenant_id = principal.tenant_id()
        cache_key, find, what = await self._lookup(tenant_id, request)
        found = await read_through(self._cache, cache_key, find)
        if found is None:
            raise NotFound("customer", what)
        return svc.LookupCustomerResponse(customer=found)

    async def _lookup(self, tenant_id: uuid.UUID, request: svc.LookupCustomerRequest) -> tuple[Key, Finder, str]:
        """A LookupCustomer's cache key, its database read, and how NOT_FOUND names what was looked for."""
        key = request.WhichOneof("key")
        if key == "phone_number":
            number = validation.required_text(request.phone_number, key)
            e164 = await self._service.e164(tenant_id, number, key)
            find = functools.partial(self._service.find_by_phone_number, tenant_id, e164)
            return keys.customer_by_phone(tenant_id, e164), find, "with this phone number"
        if key == "whatsapp_id":
            wa_id = domain.whatsapp_id(request.whatsapp_id, key)
            find = functools.partial(self._service.find_by_whatsapp_id, tenant_id, wa_id)
            return keys.customer_by_whatsapp(tenant_id, wa_id), find, "with this WhatsApp id"
        raise InvalidArgument("whatsapp_id", "give whatsapp_id or phone_number")

    async def SearchCustomers(
        self, request: svc.SearchCustomersRequest, context: grpc.aio.ServicerContext
    ) -> svc.SearchCustomersResponse:
        tenant_id = principal.tenant_id()
        page = PageRequest(validation.page_size(request.page_size, "page_size", *PAGE_SIZE), request.page_token)
        if request.name_query and request.phone_prefix:
            raise InvalidArgument("phone_prefix", "give name_query or phone_prefix, not both")
        if request.phone_prefix:
            result = await self._service.search_by_phone_prefix(tenant_id, request.phone_prefix, page)
        elif request.name_query:
            key = domain.name_query(request.name_query, "name_query")
            result = await self._service.search_by_name(tenant_id, key, page)
        else:
            raise InvalidArgument("name_query", "give name_query or phone_prefix")
        customers = [customer_proto(c) for c in result.items]
        return svc.SearchCustomersResponse(customers=customers, next_page_token=result.next_page_token)

    async def UpdateCustomer(
        self, request: svc.UpdateCustomerRequest, context: grpc.aio.ServicerContext
    ) -> svc.UpdateCustomerResponse:
        tenant_id = principal.tenant_id()
        customer_id = validation.parse_uuid(request.customer.id, "customer.id")
        etag = validation.parse_etag(request.customer.etag, "customer.etag")
        changes = _changes(request.customer, domain.update_paths(list(request.update_mask.paths)))
        updated = await self._service.update(tenant_id, customer_id, changes, etag)
        return svc.UpdateCustomerResponse(customer=customer_proto(updated))

    async def GetCustomerContext(
        self, request: svc.GetCustomerContextRequest, context: grpc.aio.ServicerContext
    ) -> svc.GetCustomerContextResponse:
        tenant_id = principal.tenant_id()
        found = await self._service.context(tenant_id, _context_request(request))
        return svc.GetCustomerContextResponse(context=context_proto(found))

    async def GetCustomerHistory(
        self, request: svc.GetCustomerHistoryRequest, context: grpc.aio.ServicerContext
    ) -> svc.GetCustomerHistoryResponse:
        tenant_id = principal.tenant_id()
        customer_id = validation.parse_uuid(request.customer_id, "customer_id")
        page = PageRequest(validation.page_size(request.page_size, "page_size", *PAGE_SIZE), request.page_token)
        result = await self._service.history(tenant_id, customer_id, page)
        entries = [_history_entry_proto(entry) for entry in result.items]
        return svc.GetCustomerHistoryResponse(entries=entries, next_page_token=result.next_page_token)

    async def EraseCustomer(
        self, request: svc.EraseCustomerRequest, context: grpc.aio.ServicerContext
    ) -> svc.EraseCustomerResponse:
        tenant_id = principal.tenant_id()
        customer_id = validation.parse_uuid(request.customer_id, "customer_id")
        audit_id = await self._eraser.erase(tenant_id, customer_id, principal.current.get().key_id)
        return svc.EraseCustomerResponse(audit_id=str(audit_id))


async def cached_customer(
    cache: Cache, service: CustomerService, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> customer_pb2.Customer | None:
    """The customer by id, read through the cache (GetCustomer, and ResolveOutbound's WhatsApp address)."""
    return await read_through(
        cache, keys.customer(tenant_id, customer_id), lambda: service.find(tenant_id, customer_id)
    )


async def read_through(cache: Cache, key: Key, find: Finder) -> customer_pb2.Customer | None:
    """The customer cached under `key`, else `find()`'s answer (None: not found, cached briefly), stored for later."""

    async def load() -> bytes | None:
        found = await find()
        return None if found is None else customer_proto(found).SerializeToString()

    data = await cache.get_or_load(key, load)
    return None if data is None else customer_pb2.Customer.FromString(data)


def customer_proto(customer: domain.Customer) -> customer_pb2.Customer:
    c = customer
    return customer_pb2.Customer(
        id=str(c.id),
        whatsapp_id=c.whatsapp_id,
        phone_number=c.phone_number or "",
        name=c.name,
        profile_picture_url=c.profile_picture_url,
        preferences=convert.struct(c.preferences),
        metadata=convert.struct(c.metadata),
        create_time=convert.timestamp(c.created_at),
        update_time=convert.timestamp(c.updated_at),
        etag=c.etag,
    )


def context_proto(found: domain.Context) -> customer_pb2.CustomerContext:
    open_conversation = None if found.open_conversation is None else conversation_proto(found.open_conversation)
    return customer_pb2.CustomerContext(
        customer=customer_proto(found.customer),
        open_conversation=open_conversation,
        reply_window_open=bool(open_conversation and open_conversation.reply_window_open),
        recent_conversations=[conversation_proto(c) for c in found.recent_conversations],
        recent_messages=[message_proto(m) for m in found.recent_messages],
    )


def _history_entry_proto(entry: domain.HistoryEntry) -> customer_pb2.CustomerHistoryEntry:
    assignments = [
        conversation_pb2.AgentAssignment(
            from_agent_id=convert.id_str(a.from_agent_id),
            to_agent_id=str(a.to_agent_id),
            reason=a.reason,
            assign_time=convert.timestamp(a.assigned_at),
        )
        for a in entry.assignments
    ]
    return customer_pb2.CustomerHistoryEntry(
        conversation=conversation_proto(entry.conversation), assignments=assignments
    )


def _customer_input(customer: customer_pb2.Customer) -> domain.CustomerInput:
    """UpsertCustomer's fields, checked; empty ones keep the stored value (None)."""
    c = customer
    return domain.CustomerInput(
        whatsapp_id=domain.whatsapp_id(c.whatsapp_id, "customer.whatsapp_id"),
        phone_number=c.phone_number or None,
        name=validation.bounded_text(c.name, "customer.name", validation.MAX_NAME) or None,
        profile_picture_url=validation.bounded_text(
            c.profile_picture_url, "customer.profile_picture_url", validation.MAX_URL
        )
        or None,
        preferences=_struct(c, "preferences") if c.HasField("preferences") else None,
        metadata=_struct(c, "metadata") if c.HasField("metadata") else None,
    )


def _changes(customer: customer_pb2.Customer, paths: list[str]) -> dict[str, Any]:
    """UpdateCustomer's changes by field name (an empty phone number or name clears it)."""
    checks: dict[str, Callable[[], Any]] = {
        "phone_number": lambda: validation.bounded_text(customer.phone_number, "customer.phone_number", 256),
        "name": lambda: validation.bounded_text(customer.name, "customer.name", validation.MAX_NAME),
        "profile_picture_url": lambda: validation.bounded_text(
            customer.profile_picture_url, "customer.profile_picture_url", validation.MAX_URL
        ),
        "preferences": lambda: _struct(customer, "preferences"),
        "metadata": lambda: _struct(customer, "metadata"),
    }
    return {path: checks[path]() for path in paths}


def _struct(customer: customer_pb2.Customer, field: str) -> dict[str, Any]:
    return validation.bounded_struct(convert.struct_dict(getattr(customer, field)), f"customer.{field}")


def _context_request(request: svc.GetCustomerContextRequest) -> ContextRequest:
    key = request.WhichOneof("key")
    if key is None:
        raise InvalidArgument("customer_id", "give customer_id or whatsapp_id")
    return ContextRequest(
        customer_id=validation.parse_uuid(request.customer_id, key) if key == "customer_id" else None,
        whatsapp_id=domain.whatsapp_id(request.whatsapp_id, key) if key == "whatsapp_id" else None,
        conversation_limit=validation.page_size(
            request.recent_conversation_limit, "recent_conversation_limit", *RECENT_CONVERSATIONS
        ),
        message_limit=validation.page_size(request.recent_message_limit, "recent_message_limit", *RECENT_MESSAGES),
    )
