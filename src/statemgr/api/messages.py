"""MessageService: proto <-> domain, nothing else. The tenant comes from the caller's API key only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import grpc
from google.rpc import code_pb2

from statemgr.api import convert, principal
from statemgr.app import App
from statemgr.domain import messages as domain
from statemgr.domain import validation
from statemgr.domain.errors import InvalidArgument
from statemgr.domain.paging import PageRequest
from statemgr.services.messages import ItemResult, MessageService
from statemgr.v1 import message_pb2 as pb
from statemgr.v1 import message_service_pb2 as svc
from statemgr.v1 import message_service_pb2_grpc as svc_grpc

PAGE_SIZE = (100, 1_000)
ID_PATHS = ("genesys_message_id", "whatsapp_message_id")

_STATUSES: Mapping[pb.MessageStatus, domain.Status] = {
    pb.MESSAGE_STATUS_PENDING: domain.Status.PENDING,
    pb.MESSAGE_STATUS_SENT: domain.Status.SENT,
    pb.MESSAGE_STATUS_FAILED: domain.Status.FAILED,
    pb.MESSAGE_STATUS_DELIVERED: domain.Status.DELIVERED,
    pb.MESSAGE_STATUS_READ: domain.Status.READ,
}
_PB_STATUSES: Mapping[domain.Status, pb.MessageStatus] = {status: number for number, status in _STATUSES.items()}
_DIRECTIONS: Mapping[pb.MessageDirection, domain.Direction] = {
    pb.MESSAGE_DIRECTION_INBOUND: domain.Direction.INBOUND,
    pb.MESSAGE_DIRECTION_OUTBOUND: domain.Direction.OUTBOUND,
}
_PB_DIRECTIONS: Mapping[domain.Direction, pb.MessageDirection] = {d: number for number, d in _DIRECTIONS.items()}


class MessageServicer(svc_grpc.MessageServiceServicer):
    def __init__(self, app: App) -> None:
        self._service = MessageService(app.db, app.settings, app.cache)

    async def RecordMessage(
        self, request: svc.RecordMessageRequest, context: grpc.aio.ServicerContext
    ) -> svc.RecordMessageResponse:
        tenant_id = principal.tenant_id()
        recorded = await self._service.record(tenant_id, _new_message(request.message))
        return svc.RecordMessageResponse(message=message_proto(recorded.message), created=recorded.created)

    async def GetMessage(
        self, request: svc.GetMessageRequest, context: grpc.aio.ServicerContext
    ) -> svc.GetMessageResponse:
        tenant_id = principal.tenant_id()
        message_id = validation.parse_uuid(request.message_id, "message_id")
        return svc.GetMessageResponse(message=message_proto(await self._service.get(tenant_id, message_id)))

    async def LookupMessage(
        self, request: svc.LookupMessageRequest, context: grpc.aio.ServicerContext
    ) -> svc.LookupMessageResponse:
        tenant_id = principal.tenant_id()
        key = domain.key_of(request.whatsapp_message_id, request.genesys_message_id, request.WhichOneof("key"))
        return svc.LookupMessageResponse(message=message_proto(await self._service.lookup(tenant_id, key)))

    async def ListMessages(
        self, request: svc.ListMessagesRequest, context: grpc.aio.ServicerContext
    ) -> svc.ListMessagesResponse:
        tenant_id = principal.tenant_id()
        conversation_id = validation.parse_uuid(request.conversation_id, "conversation_id")
        page = PageRequest(validation.page_size(request.page_size, "page_size", *PAGE_SIZE), request.page_token)
        result = await self._service.list_page(tenant_id, conversation_id, page)
        messages = [message_proto(m) for m in result.items]
        return svc.ListMessagesResponse(messages=messages, next_page_token=result.next_page_token)

    async def UpdateMessage(
        self, request: svc.UpdateMessageRequest, context: grpc.aio.ServicerContext
    ) -> svc.UpdateMessageResponse:
        tenant_id = principal.tenant_id()
        message_id = validation.parse_uuid(request.message.id, "message.id")
        keys = _ids_to_attach(request)
        return svc.UpdateMessageResponse(
            message=message_proto(await self._service.attach_ids(tenant_id, message_id, keys))
        )

    async def UpdateMessageStatus(
        self, request: svc.UpdateMessageStatusRequest, context: grpc.aio.ServicerContext
    ) -> svc.UpdateMessageStatusResponse:
        tenant_id = principal.tenant_id()
        outcome = await self._service.update_status(tenant_id, status_report(request))
        message = None if outcome.message is None else message_proto(outcome.message)
        return svc.UpdateMessageStatusResponse(message=message, changed=outcome.changed, parked=outcome.parked)

    async def BatchUpdateMessageStatus(
        self, request: svc.BatchUpdateMessageStatusRequest, context: grpc.aio.ServicerContext
    ) -> svc.BatchUpdateMessageStatusResponse:
        tenant_id = principal.tenant_id()
        count = len(request.requests)
        if not 1 <= count <= domain.MAX_BATCH:
            raise InvalidArgument("requests", f"has {count} items; give 1 to {domain.MAX_BATCH}")
        results = await self._service.batch_update_status(tenant_id, [_item(item) for item in request.requests])
        return svc.BatchUpdateMessageStatusResponse(results=[_result_proto(r) for r in results])

    async def RetryMessage(
        self, request: svc.RetryMessageRequest, context: grpc.aio.ServicerContext
    ) -> svc.RetryMessageResponse:
        tenant_id = principal.tenant_id()
        message_id = validation.parse_uuid(request.message_id, "message_id")
        return svc.RetryMessageResponse(message=message_proto(await self._service.retry(tenant_id, message_id)))


def message_proto(message: domain.Message) -> pb.Message:
    m = message
    return pb.Message(
        id=str(m.id),
        conversation_id=str(m.conversation_id),
        whatsapp_message_id=m.whatsapp_message_id or "",
        genesys_message_id=m.genesys_message_id or "",
        direction=_PB_DIRECTIONS[m.direction],
        status=_PB_STATUSES[m.status],
        content=m.content,
        media_urls=m.media_urls,
        send_time=convert.timestamp(m.sent_at),
        deliver_time=convert.timestamp(m.delivered_at),
        read_time=convert.timestamp(m.read_at),
        fail_time=convert.timestamp(m.failed_at),
        error_code=m.error_code or "",
        error_message=m.error_message or "",
        retry_count=m.retry_count,
        create_time=convert.timestamp(m.created_at),
        update_time=convert.timestamp(m.updated_at),
    )


def status_report(request: svc.UpdateMessageStatusRequest, prefix: str = "") -> domain.StatusReport:
    """The report of an UpdateMessageStatusRequest, checked; field names in errors start with `prefix`."""
    key = domain.key_of(request.whatsapp_message_id, request.genesys_message_id, request.WhichOneof("key"), prefix)
    status = domain.reported_status(_STATUSES.get(request.status), prefix + "status")
    code, text = domain.error_details(request.error_code, request.error_message, prefix)
    at = convert.optional_datetime(request, "status_time", prefix + "status_time") or dt.datetime.now(dt.UTC)
    return domain.StatusReport(key, status, at, code, text)


def _new_message(message: pb.Message) -> domain.NewMessage:
    m = message
    whatsapp_id = domain.provider_id(m.whatsapp_message_id, "message.whatsapp_message_id")
    genesys_id = domain.provider_id(m.genesys_message_id, "message.genesys_message_id")
    if whatsapp_id is None and genesys_id is None:
        raise InvalidArgument("message.whatsapp_message_id", "give whatsapp_message_id or genesys_message_id")
    direction = _DIRECTIONS.get(m.direction)
    if direction is None:
        raise InvalidArgument("message.direction", "must be INBOUND or OUTBOUND")
    status = _recorded_status(m.status, direction)
    sent_at = convert.optional_datetime(m, "send_time", "message.send_time")
    return domain.NewMessage(
        conversation_id=validation.parse_uuid(m.conversation_id, "message.conversation_id"),
        direction=direction,
        whatsapp_message_id=whatsapp_id,
        genesys_message_id=genesys_id,
        status=status,
        content=domain.content(m.content, "message.content"),
        media_urls=domain.media_urls(list(m.media_urls), "message.media_urls"),
        # A SENT message was sent: without the provider's time, the time of arrival stands in (as for reports).
        sent_at=sent_at or (dt.datetime.now(dt.UTC) if status is domain.Status.SENT else None),
    )


def _recorded_status(value: pb.MessageStatus, direction: domain.Direction) -> domain.Status:
    if value == pb.MESSAGE_STATUS_UNSPECIFIED:
        return domain.Status.SENT if direction is domain.Direction.INBOUND else domain.Status.PENDING
    status = _STATUSES.get(value)
    if status not in domain.RECORDABLE:
        raise InvalidArgument("message.status", "must be PENDING or SENT; later statuses come as status reports")
    return status


def _ids_to_attach(request: svc.UpdateMessageRequest) -> list[domain.MessageKey]:
    m = request.message
    paths = validation.mask_paths(request.update_mask.paths, ID_PATHS)
    return [domain.key_of(m.whatsapp_message_id, m.genesys_message_id, path, "message.") for path in paths]


def _item(request: svc.UpdateMessageStatusRequest) -> domain.StatusReport | InvalidArgument:
    try:
        return status_report(request)
    except InvalidArgument as exc:
        return exc


def _result_proto(result: ItemResult) -> svc.BatchUpdateMessageStatusResult:
    if result.error is not None:
        return svc.BatchUpdateMessageStatusResult(
            code=code_pb2.INVALID_ARGUMENT, error_message=str(result.error), field=result.error.field
        )
    outcome = result.outcome
    assert outcome is not None
    message_id = "" if outcome.message is None else str(outcome.message.id)
    return svc.BatchUpdateMessageStatusResult(
        code=code_pb2.OK, changed=outcome.changed, parked=outcome.parked, message_id=message_id
    )
