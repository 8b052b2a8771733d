"""An event's wire form: the statemgr.v1.Event protobuf, for the RabbitMQ body and for Subscribe.

This is the one module below api/ that builds a generated type. The AMQP body is part of the contract (consumers
decode statemgr.v1.Event), and the relay that produces it lives here; building the same message in two places
would let the broker and the stream drift apart.
"""

from __future__ import annotations

import uuid
from typing import Any

from statemgr.events import cursor
from statemgr.store.events import StoredEvent
from statemgr.v1 import conversation_pb2, event_pb2, message_pb2


def to_proto(event: StoredEvent) -> event_pb2.Event:
    """The event with its cursor; ids and states only, as stored."""
    payload = event.payload
    message = event_pb2.Event(
        id=str(event.id),
        cursor=cursor.encode(event.tenant_id, event.position),
        type=event_type(event.type),
        tenant_id=str(event.tenant_id),
        conversation_id=_text(event.conversation_id) or payload.get("conversation_id", ""),
        customer_id=payload.get("customer_id", ""),
        message_id=payload.get("message_id", ""),
        conversation_state=_STATES.get(payload.get("conversation_state", ""), _NO_STATE),
        message_status=_STATUSES.get(payload.get("message_status", ""), _NO_STATUS),
        agent_id=payload.get("agent_id", ""),
        genesys_conversation_id=payload.get("genesys_conversation_id", ""),
    )
    message.create_time.FromDatetime(event.created_at)
    return message


def to_bytes(event: StoredEvent) -> bytes:
    return to_proto(event).SerializeToString()


def routing_key(tenant_id: uuid.UUID, name: str) -> str:
    """The AMQP routing key of an event: `<tenant id>.<EventType name>`, two words, so that one binding pattern
    selects a tenant (`<tenant id>.*`), a type across tenants (`*.EVENT_TYPE_MESSAGE_RECORDED`), or both; the second
    word is the body's `type` as `EventType.Name` spells it, so consumers never translate between two spellings."""
    return f"{tenant_id}.{amqp_type(name)}"


def amqp_type(name: str) -> str:
    """The EventType enum name of a domain event type ("conversation.state_changed" ->
    "EVENT_TYPE_CONVERSATION_STATE_CHANGED"): the routing key's second word and the AMQP `type` property."""
    return event_pb2.EventType.Name(event_type(name))


def event_type(name: str) -> event_pb2.EventType:
    """The enum value of a domain event type ("conversation.state_changed"); UNSPECIFIED if unknown."""
    return _ENUM_BY_NAME.get(name, event_pb2.EVENT_TYPE_UNSPECIFIED)


def type_name(value: int) -> str | None:
    """The domain name of an EventType enum value; None for UNSPECIFIED or unknown numbers."""
    return _NAME_BY_ENUM.get(value)


def _text(value: uuid.UUID | None) -> str:
    return "" if value is None else str(value)


def _by_domain_name(enum: Any, prefix: str) -> dict[str, Any]:
    """{"active": CONVERSATION_STATE_ACTIVE, ...}: the domain's lower-case names to enum values."""
    return {name.removeprefix(prefix).lower(): number for name, number in enum.items() if number}


_STATES: dict[str, conversation_pb2.ConversationState] = _by_domain_name(
    conversation_pb2.ConversationState, "CONVERSATION_STATE_"
)
_STATUSES: dict[str, message_pb2.MessageStatus] = _by_domain_name(message_pb2.MessageStatus, "MESSAGE_STATUS_")
_NO_STATE = conversation_pb2.CONVERSATION_STATE_UNSPECIFIED
_NO_STATUS = message_pb2.MESSAGE_STATUS_UNSPECIFIED

_ENUM_BY_NAME: dict[str, event_pb2.EventType] = {
    name.replace("_", ".", 1): number for name, number in _by_domain_name(event_pb2.EventType, "EVENT_TYPE_").items()
}
_NAME_BY_ENUM: dict[int, str] = {number: name for name, number in _ENUM_BY_NAME.items()}
