"""IntegrationService: proto <-> domain, nothing else. The tenant comes from the caller's API key only."""

from __future__ import annotations

import datetime as dt

import grpc

from statemgr.api import convert, principal
from statemgr.api.conversations import to_proto as conversation_proto
from statemgr.api.customers import context_proto
from statemgr.api.messages import message_proto
from statemgr.app import App
from statemgr.domain import customers, messages, validation
from statemgr.services.integration import Inbound, IntegrationService, Outbound
from statemgr.v1 import integration_service_pb2 as svc
from statemgr.v1 import integration_service_pb2_grpc as svc_grpc


class IntegrationServicer(svc_grpc.IntegrationServiceServicer):
    def __init__(self, app: App) -> None:
        self._service = IntegrationService(app.db)

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
        result = await self._service.resolve_outbound(tenant_id, _outbound(request))
        conversation = conversation_proto(result.conversation)
        return svc.ResolveOutboundResponse(
            whatsapp_id=result.whatsapp_id,
            phone_number=result.phone_number,
            reply_window_open=conversation.reply_window_open,
            conversation=conversation,
            message=message_proto(result.message),
            message_created=result.message_created,
        )


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
