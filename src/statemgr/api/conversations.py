"""ConversationService: proto <-> domain, nothing else. The tenant comes from the caller's API key only."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc

from statemgr.api import convert, principal
from statemgr.app import App
from statemgr.cache import keys
from statemgr.domain import conversations as domain
from statemgr.domain import customers, validation
from statemgr.domain.errors import InvalidArgument, NotFound
from statemgr.domain.paging import PageRequest
from statemgr.services.conversations import ConversationService
from statemgr.v1 import conversation_pb2 as pb
from statemgr.v1 import conversation_service_pb2 as svc
from statemgr.v1 import conversation_service_pb2_grpc as svc_grpc

_PB_STATES: Mapping[domain.State, pb.ConversationState] = {
    domain.State.ACTIVE: pb.CONVERSATION_STATE_ACTIVE,
    domain.State.WAITING: pb.CONVERSATION_STATE_WAITING,
    domain.State.ERROR: pb.CONVERSATION_STATE_ERROR,
    domain.State.CLOSED: pb.CONVERSATION_STATE_CLOSED,
}
_STATES: Mapping[int, domain.State] = {number: state for state, number in _PB_STATES.items()}


class ConversationServicer(svc_grpc.ConversationServiceServicer):
    def __init__(self, app: App) -> None:
        self._service = ConversationService(app.db, app.cache)
        self._cache = app.cache

    async def CreateConversation(
        self, request: svc.CreateConversationRequest, context: grpc.aio.ServicerContext
    ) -> svc.CreateConversationResponse:
        tenant_id = principal.tenant_id()
        created = await self._service.create(tenant_id, _new_conversation(request))
        return svc.CreateConversationResponse(conversation=to_proto(created))

    async def GetConversation(
        self, request: svc.GetConversationRequest, context: grpc.aio.ServicerContext
    ) -> svc.GetConversationResponse:
        tenant_id = principal.tenant_id()
        conversation_id = validation.parse_uuid(request.conversation_id, "conversation_id")

        async def load() -> bytes:
            return to_proto(await self._service.get(tenant_id, conversation_id)).SerializeToString()

        cached = await self._cache.get_or_load(keys.conversation(tenant_id, conversation_id), load)
        return svc.GetConversationResponse(conversation=from_cache(cached, "conversation", str(conversation_id)))

    async def LookupConversation(
        self, request: svc.LookupConversationRequest, context: grpc.aio.ServicerContext
    ) -> svc.LookupConversationResponse:
        tenant_id = principal.tenant_id()
        key = request.WhichOneof("key")
        lookup: Callable[[uuid.UUID, str], Awaitable[domain.Conversation]]
        if key == "genesys_conversation_id":
            external = domain.external_id(request.genesys_conversation_id, "genesys_conversation_id")
            cache_key, lookup = keys.conversation_by_genesys(tenant_id, external), self._service.lookup_by_genesys_id
        elif key == "whatsapp_conversation_id":
            external = domain.external_id(request.whatsapp_conversation_id, "whatsapp_conversation_id")
            cache_key, lookup = keys.conversation_by_whatsapp(tenant_id, external), self._service.lookup_by_whatsapp_id
        else:
            raise InvalidArgument(
                "whatsapp_conversation_id", "give whatsapp_conversation_id or genesys_conversation_id"
            )

        async def load() -> bytes | None:
            try:
                return to_proto(await lookup(tenant_id, external)).SerializeToString()
            except NotFound:
                return None  # cached briefly as "not found"

        cached = await self._cache.get_or_load(cache_key, load)
        return svc.LookupConversationResponse(conversation=from_cache(cached, f"conversation with {key}", external))

    async def ListConversations(
        self, request: svc.ListConversationsRequest, context: grpc.aio.ServicerContext
    ) -> svc.ListConversationsResponse:
        tenant_id = principal.tenant_id()
        page = _page_request(request.page_size, request.page_token, domain.LIST_PAGE_SIZE)
        result = await self._service.list(tenant_id, _filter(request), page)
        conversations = [to_proto(c) for c in result.items]
        return svc.ListConversationsResponse(conversations=conversations, next_page_token=result.next_page_token)

    async def SearchConversations(
        self, request: svc.SearchConversationsRequest, context: grpc.aio.ServicerContext
    ) -> svc.SearchConversationsResponse:
        tenant_id = principal.tenant_id()
        page = _page_request(request.page_size, request.page_token, domain.LIST_PAGE_SIZE)
        result = await self._service.search(tenant_id, _criteria(request), page)
        conversations = [to_proto(c) for c in result.items]
        return svc.SearchConversationsResponse(conversations=conversations, next_page_token=result.next_page_token)

    async def UpdateConversation(
        self, request: svc.UpdateConversationRequest, context: grpc.aio.ServicerContext
    ) -> svc.UpdateConversationResponse:
        tenant_id = principal.tenant_id()
        conversation_id = validation.parse_uuid(request.conversation.id, "conversation.id")
        etag = validation.parse_etag(request.conversation.etag, "conversation.etag")
        changes = _changes(request)
        updated = await self._service.update(tenant_id, conversation_id, changes, etag)
        return svc.UpdateConversationResponse(conversation=to_proto(updated))

    async def TransitionConversation(
        self, request: svc.TransitionConversationRequest, context: grpc.aio.ServicerContext
    ) -> svc.TransitionConversationResponse:
        tenant_id = principal.tenant_id()
        conversation_id = validation.parse_uuid(request.conversation_id, "conversation_id")
        target = _state(request.state, "state")
        if target is None:
            raise InvalidArgument("state", "is required")
        reason = domain.reason(request.reason)
        etag = validation.parse_etag(request.etag, "etag")
        moved = await self._service.transition(tenant_id, conversation_id, target, reason, etag)
        return svc.TransitionConversationResponse(conversation=to_proto(moved))

    async def TransferConversation(
        self, request: svc.TransferConversationRequest, context: grpc.aio.ServicerContext
    ) -> svc.TransferConversationResponse:
        tenant_id = principal.tenant_id()
        conversation_id = validation.parse_uuid(request.conversation_id, "conversation_id")
        agent_id = validation.parse_uuid(request.agent_id, "agent_id")
        reason = domain.reason(request.reason)
        moved = await self._service.transfer(tenant_id, conversation_id, agent_id, reason)
        return svc.TransferConversationResponse(conversation=to_proto(moved))

    async def CloseConversation(
        self, request: svc.CloseConversationRequest, context: grpc.aio.ServicerContext
    ) -> svc.CloseConversationResponse:
        tenant_id = principal.tenant_id()
        conversation_id = validation.parse_uuid(request.conversation_id, "conversation_id")
        closed = await self._service.close(tenant_id, conversation_id, domain.reason(request.reason))
        return svc.CloseConversationResponse(conversation=to_proto(closed))

    async def GetConversationHistory(
        self, request: svc.GetConversationHistoryRequest, context: grpc.aio.ServicerContext
    ) -> svc.GetConversationHistoryResponse:
        tenant_id = principal.tenant_id()
        conversation_id = validation.parse_uuid(request.conversation_id, "conversation_id")
        page = _page_request(request.page_size, request.page_token, domain.HISTORY_PAGE_SIZE)
        result = await self._service.history(tenant_id, conversation_id, page)
        entries = [history_entry_proto(entry) for entry in result.items]
        return svc.GetConversationHistoryResponse(entries=entries, next_page_token=result.next_page_token)


def from_cache(data: bytes | None, resource: str, key: str) -> pb.Conversation:
    """A cached Conversation, with `reply_window_open` judged now rather than when it was cached."""
    if data is None:
        raise NotFound(resource, key)
    conversation = pb.Conversation.FromString(data)
    if conversation.HasField("reply_window_expire_time"):
        expires = conversation.reply_window_expire_time
        conversation.reply_window_open = expires.ToNanoseconds() > time.time_ns()
    return conversation


def to_proto(conversation: domain.Conversation, now: dt.datetime | None = None) -> pb.Conversation:
    """The Conversation message; `reply_window_open` is judged at `now` (the current time by default)."""
    c = conversation
    return pb.Conversation(
        id=str(c.id),
        whatsapp_conversation_id=c.whatsapp_conversation_id,
        genesys_conversation_id=c.genesys_conversation_id or "",
        previous_genesys_conversation_ids=list(c.previous_genesys_conversation_ids),
        customer_id=convert.id_str(c.customer_id),
        agent_id=convert.id_str(c.agent_id),
        state=_PB_STATES[c.state],
        create_time=convert.timestamp(c.created_at),
        close_time=convert.timestamp(c.closed_at),
        last_activity_time=convert.timestamp(c.last_activity),
        metadata=convert.struct(c.metadata),
        etag=c.etag,
        reply_window_expire_time=convert.timestamp(c.window_expires_at),
        reply_window_open=c.reply_window_open(now or dt.datetime.now(dt.UTC)),
    )


def history_entry_proto(entry: domain.HistoryEntry) -> pb.HistoryEntry:
    """The HistoryEntry message of a timeline entry; `entry.kind` names the oneof field to fill."""
    build = _HISTORY_KINDS.get(entry.kind)
    if build is None:
        raise ValueError(f"no conversion for history entries of kind {entry.kind!r}")
    return pb.HistoryEntry(time=convert.timestamp(entry.at), **{entry.kind: build(entry.at, entry.data)})


def _created(at: dt.datetime, data: Mapping[str, Any]) -> pb.Conversation:
    return pb.Conversation(
        id=str(data["id"]),
        whatsapp_conversation_id=str(data["whatsapp_conversation_id"]),
        customer_id=data.get("customer_id") or "",
        state=pb.CONVERSATION_STATE_ACTIVE,
        create_time=convert.timestamp(at),
    )


def _state_change(at: dt.datetime, data: Mapping[str, Any]) -> pb.StateChange:
    return pb.StateChange(
        from_state=_PB_STATES[domain.State(data["from_state"])],
        to_state=_PB_STATES[domain.State(data["to_state"])],
        reason=data.get("reason") or "",
    )


def _assignment(at: dt.datetime, data: Mapping[str, Any]) -> pb.AgentAssignment:
    return pb.AgentAssignment(
        from_agent_id=data.get("from_agent_id") or "",
        to_agent_id=str(data["to_agent_id"]),
        reason=data.get("reason") or "",
        assign_time=convert.timestamp(at),
    )


def _genesys_mapping_change(at: dt.datetime, data: Mapping[str, Any]) -> pb.GenesysMappingChange:
    return pb.GenesysMappingChange(
        from_genesys_conversation_id=data.get("from_genesys_conversation_id") or "",
        to_genesys_conversation_id=str(data["to_genesys_conversation_id"]),
    )


def _message_recorded(at: dt.datetime, data: Mapping[str, Any]) -> pb.MessageRecorded:
    return pb.MessageRecorded(message_id=str(data["message_id"]), direction=str(data["direction"]))


def _message_status_change(at: dt.datetime, data: Mapping[str, Any]) -> pb.MessageStatusChange:
    return pb.MessageStatusChange(
        message_id=str(data["message_id"]), status=str(data["status"]), changed=bool(data.get("changed"))
    )


_HISTORY_KINDS: Mapping[str, Callable[[dt.datetime, Mapping[str, Any]], Any]] = {
    "created": _created,
    "state_change": _state_change,
    "assignment": _assignment,
    "genesys_mapping_change": _genesys_mapping_change,
    "message_recorded": _message_recorded,
    "message_status_change": _message_status_change,
}


def _new_conversation(request: svc.CreateConversationRequest) -> domain.NewConversation:
    c = request.conversation
    return domain.NewConversation(
        whatsapp_conversation_id=domain.external_id(
            c.whatsapp_conversation_id, "conversation.whatsapp_conversation_id"
        ),
        genesys_conversation_id=domain.optional_external_id(
            c.genesys_conversation_id, "conversation.genesys_conversation_id"
        ),
        customer_id=validation.optional_uuid(c.customer_id, "conversation.customer_id"),
        agent_id=validation.optional_uuid(c.agent_id, "conversation.agent_id"),
        metadata=domain.metadata(convert.struct_dict(c.metadata), "conversation.metadata"),
        request_id=validation.optional_uuid(request.request_id, "request_id"),
    )


def _changes(request: svc.UpdateConversationRequest) -> domain.Changes:
    paths = domain.update_paths(request.update_mask.paths)
    genesys_id, metadata = None, None
    if "genesys_conversation_id" in paths:
        genesys_id = domain.optional_external_id(
            request.conversation.genesys_conversation_id, "conversation.genesys_conversation_id"
        )
        if genesys_id is None:
            raise InvalidArgument("conversation.genesys_conversation_id", "cannot be cleared; give the new id")
    if "metadata" in paths:
        metadata = domain.metadata(convert.struct_dict(request.conversation.metadata), "conversation.metadata")
    return domain.Changes(genesys_conversation_id=genesys_id, metadata=metadata)


def _filter(request: svc.ListConversationsRequest) -> domain.Filter:
    return domain.Filter(
        state=_state(request.state, "state"),
        agent_id=validation.optional_uuid(request.agent_id, "agent_id"),
        customer_id=validation.optional_uuid(request.customer_id, "customer_id"),
        active_from=convert.optional_datetime(request, "last_activity_start_time"),
        active_to=convert.optional_datetime(request, "last_activity_end_time"),
    )


def _criteria(request: svc.SearchConversationsRequest) -> domain.Criteria:
    metadata = convert.struct_dict(request.metadata)
    return domain.Criteria(
        whatsapp_conversation_id=domain.optional_external_id(
            request.whatsapp_conversation_id, "whatsapp_conversation_id"
        ),
        genesys_conversation_id=domain.optional_external_id(request.genesys_conversation_id, "genesys_conversation_id"),
        metadata=domain.metadata(metadata, "metadata") if metadata else None,
        customer_phone_number=request.customer_phone_number or None,
        customer_name_key=customers.name_query(request.customer_name, "customer_name")
        if request.customer_name
        else None,
    )


def _state(value: int, field: str) -> domain.State | None:
    """The state of an enum number; None for UNSPECIFIED, INVALID_ARGUMENT for a number this server does not know."""
    if value == pb.CONVERSATION_STATE_UNSPECIFIED:
        return None
    if value not in _STATES:
        raise InvalidArgument(field, f"{value} is not a ConversationState")
    return _STATES[value]


def _page_request(size: int, token: str, limits: tuple[int, int]) -> PageRequest:
    default, maximum = limits
    return PageRequest(validation.page_size(size, "page_size", default, maximum), token)
