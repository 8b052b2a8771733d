"""The wire form of events: every domain type and state has its enum value; no personal data travels."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from statemgr.domain.events import Event, EventType
from statemgr.events import cursor, wire
from statemgr.events.cursor import Position
from statemgr.store.events import StoredEvent
from statemgr.v1 import conversation_pb2, event_pb2, message_pb2


def stored(event: Event, tenant_id: uuid.UUID | None = None) -> StoredEvent:
    return StoredEvent(
        tenant_id=tenant_id or uuid.uuid4(),
        position=Position(77, 9),
        id=uuid.uuid4(),
        type=event.type.value,
        conversation_id=event.conversation_id,
        payload=event.payload(),
        created_at=dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    )


def test_every_domain_event_type_has_an_enum_value_and_back() -> None:
    for event_type in EventType:
        value = wire.event_type(event_type.value)
        assert value != event_pb2.EVENT_TYPE_UNSPECIFIED, event_type
        assert wire.type_name(value) == event_type.value
        assert wire.amqp_type(event_type.value) == event_pb2.EventType.Name(value)
    assert wire.type_name(event_pb2.EVENT_TYPE_UNSPECIFIED) is None
    assert wire.type_name(999) is None


def test_conversation_event_carries_ids_state_and_cursor() -> None:
    tenant, conversation, agent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    event = Event(EventType.CONVERSATION_TRANSFERRED, conversation_id=conversation, conversation_state="waiting",
                  agent_id=agent, genesys_conversation_id="g-1")  # fmt: skip
    row = stored(event, tenant)
    proto = wire.to_proto(row)
    assert proto.id == str(row.id) and proto.tenant_id == str(tenant) and proto.conversation_id == str(conversation)
    assert proto.type == event_pb2.EVENT_TYPE_CONVERSATION_TRANSFERRED
    assert proto.conversation_state == conversation_pb2.CONVERSATION_STATE_WAITING
    assert proto.agent_id == str(agent) and proto.genesys_conversation_id == "g-1"
    assert cursor.decode(proto.cursor, tenant) == Position(77, 9)
    assert proto.create_time.ToDatetime(tzinfo=dt.UTC) == row.created_at
    assert event_pb2.Event.FromString(wire.to_bytes(row)) == proto


def test_message_status_maps_and_unknown_values_stay_unspecified() -> None:
    message = stored(Event(EventType.MESSAGE_STATUS_CHANGED, message_id=uuid.uuid4(), message_status="delivered"))
    assert wire.to_proto(message).message_status == message_pb2.MESSAGE_STATUS_DELIVERED
    odd = dataclasses.replace(message, payload={"message_status": "teleported"})
    assert wire.to_proto(odd).message_status == message_pb2.MESSAGE_STATUS_UNSPECIFIED


def test_the_event_message_has_no_field_for_personal_data() -> None:
    names = {field.name for field in event_pb2.Event.DESCRIPTOR.fields}
    assert not names & {"phone", "phone_number", "name", "display_name", "text", "body", "content", "metadata"}


def test_the_routing_key_is_two_words_the_tenant_and_the_body_type_name() -> None:
    tenant = uuid.UUID("4f0c2b1e-0000-4000-8000-0000000000e1")
    key = wire.routing_key(tenant, EventType.CONVERSATION_STATE_CHANGED.value)
    assert key == "4f0c2b1e-0000-4000-8000-0000000000e1.EVENT_TYPE_CONVERSATION_STATE_CHANGED"
    for event_type in EventType:
        first, second = wire.routing_key(tenant, event_type.value).split(".")
        assert first == str(tenant) and event_pb2.EventType.Value(second) == wire.event_type(event_type.value)
