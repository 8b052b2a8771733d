"""The ConversationService mappers: domain objects to proto messages, and requests to domain input."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from statemgr.api import conversations as api
from statemgr.domain import conversations as domain
from statemgr.domain.errors import InvalidArgument
from statemgr.v1 import conversation_pb2 as pb
from statemgr.v1 import conversation_service_pb2 as svc

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def sample(**overrides: object) -> domain.Conversation:
    values: dict[str, object] = {
        "id": uuid.UUID(int=1),
        "whatsapp_conversation_id": "wa-1",
        "genesys_conversation_id": "g-2",
        "previous_genesys_conversation_ids": ("g-1",),
        "customer_id": uuid.UUID(int=2),
        "agent_id": None,
        "state": domain.State.WAITING,
        "created_at": NOW,
        "closed_at": None,
        "last_activity": NOW,
        "metadata": {"tier": "gold", "n": 2},
        "version": 5,
        "window_expires_at": NOW + dt.timedelta(hours=1),
    }
    values.update(overrides)
    return domain.Conversation(**values)  # type: ignore[arg-type]


def test_conversation_to_proto() -> None:
    message = api.to_proto(sample(), now=NOW)
    assert message.id == str(uuid.UUID(int=1))
    assert message.previous_genesys_conversation_ids == ["g-1"]
    assert message.customer_id == str(uuid.UUID(int=2)) and message.agent_id == ""
    assert message.state == pb.CONVERSATION_STATE_WAITING
    assert message.etag == "5"
    assert not message.HasField("close_time")
    assert message.metadata["tier"] == "gold"
    assert message.reply_window_open
    assert message.reply_window_expire_time.ToDatetime(tzinfo=dt.UTC) == NOW + dt.timedelta(hours=1)
    assert not api.to_proto(sample(), now=NOW + dt.timedelta(hours=2)).reply_window_open
    assert not api.to_proto(sample(window_expires_at=None), now=NOW).HasField("reply_window_expire_time")


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            "created",
            {"id": "c", "whatsapp_conversation_id": "wa", "customer_id": None},
            pb.Conversation(id="c", whatsapp_conversation_id="wa", state=pb.CONVERSATION_STATE_ACTIVE),
        ),
        (
            "state_change",
            {"from_state": "active", "to_state": "closed", "reason": "done"},
            pb.StateChange(
                from_state=pb.CONVERSATION_STATE_ACTIVE, to_state=pb.CONVERSATION_STATE_CLOSED, reason="done"
            ),
        ),
        (
            "assignment",
            {"from_agent_id": None, "to_agent_id": "a", "reason": ""},
            pb.AgentAssignment(to_agent_id="a"),
        ),
        (
            "genesys_mapping_change",
            {"from_genesys_conversation_id": "g-1", "to_genesys_conversation_id": "g-2"},
            pb.GenesysMappingChange(from_genesys_conversation_id="g-1", to_genesys_conversation_id="g-2"),
        ),
        (
            "message_recorded",
            {"message_id": "m", "direction": "inbound"},
            pb.MessageRecorded(message_id="m", direction="inbound"),
        ),
        (
            "message_status_change",
            {"message_id": "m", "status": "read", "changed": True},
            pb.MessageStatusChange(message_id="m", status="read", changed=True),
        ),
    ],
)
def test_history_entries_fill_the_oneof_their_kind_names(kind: str, data: dict[str, object], expected: object) -> None:
    entry = api.history_entry_proto(domain.HistoryEntry(at=NOW, rank=0, entry_id="e", kind=kind, data=data))
    assert entry.WhichOneof("kind") == kind
    got = getattr(entry, kind)
    for field in ("create_time", "assign_time"):
        if field in got.DESCRIPTOR.fields_by_name:
            got.ClearField(field)  # the entry's own time, checked below
    assert got == expected
    assert entry.time.ToDatetime(tzinfo=dt.UTC) == NOW


def test_unknown_history_kind_is_a_bug_not_silence() -> None:
    with pytest.raises(ValueError, match="no conversion"):
        api.history_entry_proto(domain.HistoryEntry(at=NOW, rank=9, entry_id="e", kind="nope", data={}))


def test_update_request_to_changes() -> None:
    request = svc.UpdateConversationRequest(
        conversation=pb.Conversation(genesys_conversation_id="g-9", metadata=struct_pb2.Struct()),
        update_mask=field_mask_pb2.FieldMask(paths=["genesys_conversation_id", "metadata"]),
    )
    assert api._changes(request) == domain.Changes(genesys_conversation_id="g-9", metadata={})
    request.conversation.genesys_conversation_id = ""
    with pytest.raises(InvalidArgument) as caught:
        api._changes(request)
    assert caught.value.field == "conversation.genesys_conversation_id"


def test_states_unspecified_and_unknown() -> None:
    assert api._state(pb.CONVERSATION_STATE_UNSPECIFIED, "state") is None
    assert api._state(pb.CONVERSATION_STATE_ERROR, "state") is domain.State.ERROR
    with pytest.raises(InvalidArgument) as caught:
        api._state(42, "state")
    assert caught.value.field == "state"
