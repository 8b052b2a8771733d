"""IntegrationService: proto <-> domain, nothing else. The tenant comes from the caller's API key only.

ResolveOutbound reads its route (services.integration.Route) and the customer it names through the cache; the
message is recorded in PostgreSQL on every call.
"""

from __future__ import annotations

import datetime as dt
import uuid

import grpc

from statemgr.api import convert, principal
from statemgr.api.conversations import to_proto as conversation_proto
from statemgr.api.customers import cached_customer, context_proto
from statemgr.api.messages import message_proto
from statemgr.app import App
from statemgr.cache import keys
from statemgr.domain import customers, messages, validation
from statemgr.domain.errors import FailedPrecondition, NotFound
from statemgr.services.customers import CustomerService
from statemgr.services.inbound import Inbound
from statemgr.services.integration import IntegrationService, Outbound, OutboundResult, Route
from statemgr.v1 import conversation_pb2
from statemgr.v1 import integration_service_pb2 as svc
from statemgr.v1 import integration_service_pb2_grpc as svc_grpc


class IntegrationServicer(svc_grpc.IntegrationServiceServicer):
    def __init__(self, app: App) -> None:
        self._service = IntegrationService(app.db, app.cache)
        self._customers = CustomerService(app.db, app.cache)
        self._cache = app.cache

    async def ResolveInbound(
        self, request: svc.ResolveInboundRequest, context: grpc.aio.ServicerContext
    ) -> svc.ResolveInboundResponse:
        tenant_id = principal.tenant_id()
        result = await self._service.resolve_inbound(tenant_id, _inbound(request))
        return svc.ResolveInboundResponse(
            context=context_proto(result.context),
            conversation=conversation_proto(result.conversation),
            message=message_proto(result.message),
            customer_created=result.customer_created,
            conversation_created=result.conversation_created,
            message_created=result.message_created,
        )

    async def ResolveOutbound(
        self, request: svc.ResolveOutboundRequest, context: grpc.aio.ServicerContext
    ) -> svc.ResolveOutboundResponse:
        tenant_id = principal.tenant_id()
        outbound = _outbound(request)
        route, result = await self._record(tenant_id, outbound)
        whatsapp_id, phone_number = route.whatsapp_conversation_id, ""
        if route.customer_id is not None:
            customer = await cached_customer(self._cache, self._customers, tenant_id, route.customer_id)
            if customer is not None:
                whatsapp_id, phone_number = customer.whatsapp_id, customer.phone_number
        conversation = conversation_proto(result.conversation)  # the reply window judged now, from the fresh row
        return svc.ResolveOutboundResponse(
            whatsapp_id=whatsapp_id,
            phone_number=phone_number,
            reply_window_open=conversation.reply_window_open,
            conversation=conversation,
            message=message_proto(result.message),
            message_created=result.message_created,
        )

    async def _record(self, tenant_id: uuid.UUID, outbound: Outbound) -> tuple[Route, OutboundResult]:
        """Records the message along the cached route. Should its conversation refuse it (gone or closed) while
        PostgreSQL now gives another route, the cached one was stale (an invalidation not heard yet): it is
        replaced, and the message follows the new route. The same route: the refusal stands."""
        genesys_id = outbound.genesys_conversation_id
        route = await self._cached_route(tenant_id, genesys_id)
        try:
            return route, await self._service.record_outbound(tenant_id, outbound, route)
        except (NotFound, FailedPrecondition):
            if await self._service.route(tenant_id, genesys_id) in (None, route):
                raise
        await self._cache.invalidate(tenant_id, [keys.outbound_route(tenant_id, genesys_id)])
        route = await self._cached_route(tenant_id, genesys_id)  # loaded again, and cached
        return route, await self._service.record_outbound(tenant_id, outbound, route)

    async def _cached_route(self, tenant_id: uuid.UUID, genesys_id: str) -> Route:
        async def load() -> bytes | None:
            found = await self._service.route(tenant_id, genesys_id)
            return None if found is None else route_proto(found).SerializeToString()

        data = await self._cache.get_or_load(keys.outbound_route(tenant_id, genesys_id), load)
        if data is None:
            raise NotFound("conversation with Genesys conversation id", genesys_id)
        return route_from_proto(svc.ResolveOutboundResponse.FromString(data))


def route_proto(route: Route) -> svc.ResolveOutboundResponse:
    """A route as cached: the ResolveOutboundResponse fields it determines (no message, no reply window)."""
    conversation = conversation_pb2.Conversation(
        id=str(route.conversation_id),
        whatsapp_conversation_id=route.whatsapp_conversation_id,
        customer_id=convert.id_str(route.customer_id),
    )
    return svc.ResolveOutboundResponse(conversation=conversation)


def route_from_proto(message: svc.ResolveOutboundResponse) -> Route:
    c = message.conversation
    return Route(uuid.UUID(c.id), c.whatsapp_conversation_id, uuid.UUID(c.customer_id) if c.customer_id else None)


def _inbound(request: svc.ResolveInboundRequest) -> Inbound:
    r = request
    whatsapp_id = customers.whatsapp_id(r.whatsapp_id, "whatsapp_id")
    conversation_id = r.whatsapp_conversation_id or whatsapp_id
    return Inbound(
        whatsapp_id=whatsapp_id,
        phone_number=r.phone_number or None,
        customer_name=validation.bounded_text(r.customer_name, "customer_name", validation.MAX_NAME) or None,
        whatsapp_conversation_id=validation.required_text(conversation_id, "whatsapp_conversation_id"),
        whatsapp_message_id=validation.required_text(r.whatsapp_message_id, "whatsapp_message_id"),
        content=messages.content(r.content, "content"),
        media_urls=messages.media_urls(list(r.media_urls), "media_urls"),
        sent_at=convert.optional_datetime(r, "send_time") or dt.datetime.now(dt.UTC),
    )


def _outbound(request: svc.ResolveOutboundRequest) -> Outbound:
    r = request
    return Outbound(
        genesys_conversation_id=validation.required_text(r.genesys_conversation_id, "genesys_conversation_id"),
        genesys_message_id=validation.required_text(r.genesys_message_id, "genesys_message_id"),
        content=messages.content(r.content, "content"),
        media_urls=messages.media_urls(list(r.media_urls), "media_urls"),
        sent_at=convert.optional_datetime(r, "send_time"),
    )
