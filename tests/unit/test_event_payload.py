from __future__ import annotations

import uuid

from statemgr.domain.events import Event, EventType


def test_payload_keeps_ids_and_states_and_drops_empty_fields() -> None:
    conversation, message = uuid.uuid4(), uuid.uuid4()
    event = Event(
        EventType.MESSAGE_STATUS_CHANGED, conversation_id=conversation, message_id=message, message_status="read"
    )
    assert event.payload() == {
        "conversation_id": str(conversation),
        "message_id": str(message),
        "message_status": "read",
    }


def test_payload_has_no_field_for_personal_data() -> None:
    names = set(Event(EventType.CUSTOMER_UPDATED, customer_id=uuid.uuid4()).__dataclass_fields__)
    assert not names & {"content", "phone_number", "name", "metadata", "whatsapp_id"}
