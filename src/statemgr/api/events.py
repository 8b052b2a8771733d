"""EventService: Subscribe streams a tenant's events (replay after a cursor, then live), with heartbeats.

The stream's first heartbeat marks the moment it is live: every event committed after the client has seen it will
be delivered. Each event carries its cursor; each heartbeat carries the cursor to resume from, which moves past
events the filter left out, so a quiet room resumes without rescanning the tenant's traffic.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import grpc
from google.protobuf import timestamp_pb2

from statemgr.api import principal
from statemgr.domain import validation
from statemgr.domain.errors import InvalidArgument, OutOfRange, Unavailable
from statemgr.events import cursor, metrics, wire
from statemgr.events import log as event_log
from statemgr.events.feed import Delivery
from statemgr.events.log import Filter
from statemgr.events.subscriptions import Dispatcher, Heartbeat, Item, Start
from statemgr.store.db import Database
from statemgr.v1 import event_service_pb2 as svc
from statemgr.v1 import event_service_pb2_grpc

MAX_ROOMS = 1_000
SERVICE = "statemgr.v1.EventService"


class EventServicer(event_service_pb2_grpc.EventServiceServicer):
    def __init__(self, dispatcher: Dispatcher | None) -> None:
        """`dispatcher` is None when streaming is switched off (STATEMGR_STREAMING_ENABLED=false)."""
        self._dispatcher = dispatcher

    async def Subscribe(self, request: svc.SubscribeRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        """Yields each SubscribeResponse already serialized (see `add_to_server`)."""
        if self._dispatcher is None:
            raise Unavailable("event streaming is switched off on this server (STATEMGR_STREAMING_ENABLED=false)")
        tenant_id = principal.tenant_id()
        wanted, start = _filter(request), _start(request, tenant_id)
        try:
            async with contextlib.aclosing(self._dispatcher.stream(tenant_id, wanted, start)) as items:
                async for item in items:
                    yield _response(item, tenant_id)
        except OutOfRange as exc:
            raise await _expired(self._dispatcher.db, tenant_id, exc) from exc


async def _expired(db: Database, tenant_id: uuid.UUID, exc: OutOfRange) -> OutOfRange:
    """OUT_OF_RANGE with a way back that keeps the client's place: a cursor at this moment (ErrorInfo metadata
    `resync_cursor`). A client that reloads its state with the read RPCs and then subscribes after that cursor
    misses nothing that changed since the error; it may see again events committed just before it."""
    position, _ = await event_log.now(db, tenant_id)
    return OutOfRange(
        f"{exc}; reload state with the read RPCs, then resubscribe after the resync_cursor of this error's ErrorInfo"
        " (or with from_now); no start at all replays what the log still holds",
        details={"resync_cursor": cursor.encode(tenant_id, position)},
    )


def _filter(request: svc.SubscribeRequest) -> Filter:
    if len(request.conversation_ids) > MAX_ROOMS:
        raise InvalidArgument(
            "conversation_ids", f"names {len(request.conversation_ids)} conversations; at most {MAX_ROOMS}"
        )
    rooms = frozenset(
        validation.parse_uuid(value, f"conversation_ids[{i}]") for i, value in enumerate(request.conversation_ids)
    )
    return Filter(
        conversation_ids=rooms, types=frozenset(_type(value, i) for i, value in enumerate(request.event_types))
    )


def _type(value: int, index: int) -> str:
    name = wire.type_name(value)
    if name is None:
        raise InvalidArgument(f"event_types[{index}]", "must be a known event type, not EVENT_TYPE_UNSPECIFIED")
    return name


def _start(request: svc.SubscribeRequest, tenant_id: uuid.UUID) -> Start:
    which = request.WhichOneof("start")
    if which == "after_cursor" and request.after_cursor:
        return Start(after=cursor.decode(request.after_cursor, tenant_id, "after_cursor"))
    return Start(from_now=which == "from_now" and request.from_now)


def add_to_server(servicer: EventServicer, server: grpc.aio.Server) -> None:
    """Registers EventService like the generated `add_EventServiceServicer_to_server`, but with no response
    serializer: Subscribe yields bytes, so an event going to a thousand streams is serialized once, not a thousand
    times."""
    handlers = {
        "Subscribe": grpc.unary_stream_rpc_method_handler(
            servicer.Subscribe, request_deserializer=svc.SubscribeRequest.FromString, response_serializer=None
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def _response(item: Item, tenant_id: uuid.UUID) -> bytes:
    if isinstance(item, Heartbeat):
        beat = svc.Heartbeat(time=_now(), cursor=cursor.encode(tenant_id, item.position))
        return svc.SubscribeResponse(heartbeat=beat).SerializeToString()
    metrics.DELIVERED.inc()
    return _rendered(item)


def _rendered(delivery: Delivery) -> bytes:
    """The serialized response for a delivery, built once however many subscribers receive it."""
    if delivery.rendered is None:
        delivery.rendered = svc.SubscribeResponse(event=wire.to_proto(delivery.event)).SerializeToString()
    response: bytes = delivery.rendered
    return response


def _now() -> timestamp_pb2.Timestamp:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return now
