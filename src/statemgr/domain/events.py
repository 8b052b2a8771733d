"""Events: what changed, as ids and states. Never message content, phone numbers or names."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid


class EventType(enum.StrEnum):
    """The kinds of state change, as stored in the log; events/wire.py maps each to its EventType enum name."""

    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_STATE_CHANGED = "conversation.state_changed"
    CONVERSATION_TRANSFERRED = "conversation.transferred"
    CONVERSATION_GENESYS_MAPPING_CHANGED = "conversation.genesys_mapping_changed"
    CONVERSATION_CLOSED = "conversation.closed"
    MESSAGE_RECORDED = "message.recorded"
    MESSAGE_STATUS_CHANGED = "message.status_changed"
    MESSAGE_RETRIED = "message.retried"
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_ERASED = "customer.erased"


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One state change. States are the lower-case domain names ("active", "delivered")."""

    type: EventType
    conversation_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    conversation_state: str = ""
    message_status: str = ""
    agent_id: uuid.UUID | None = None
    genesys_conversation_id: str = ""
    # What analytics folds (statemgr.analytics.fold): when the change happened (for a message event, when the
    # message was recorded), a message's direction, delivery times and provider error code.
    at: dt.datetime | None = None
    direction: str = ""
    delivered_at: dt.datetime | None = None
    read_at: dt.datetime | None = None
    error_code: str = ""

    def payload(self) -> dict[str, str]:
        """The fields worth storing, as JSON-ready strings (times in ISO 8601); empty ones left out."""
        # Read by name, not with dataclasses.asdict: this runs on every write and asdict deep-copies.
        values = ((name, getattr(self, name)) for name in _PAYLOAD_FIELDS)
        return {name: _text(value) for name, value in values if value is not None and value != ""}


_PAYLOAD_FIELDS = tuple(field.name for field in dataclasses.fields(Event) if field.name != "type")


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)
