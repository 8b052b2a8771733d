"""Checks on what callers send about conversations, and the domain object's own rules."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from statemgr.domain import conversations as domain
from statemgr.domain import validation
from statemgr.domain.errors import Aborted, FailedPrecondition, InvalidArgument

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def conversation(**overrides: object) -> domain.Conversation:
    row: dict[str, object] = {
        "id": uuid.UUID(int=1),
        "tenant_id": uuid.UUID(int=9),  # extra columns are ignored
        "whatsapp_conversation_id": "wa-1",
        "genesys_conversation_id": "g-2",
        "previous_genesys_conversation_ids": ["g-1"],
        "customer_id": None,
        "agent_id": None,
        "state": "active",
        "created_at": NOW,
        "closed_at": None,
        "last_activity": NOW,
        "metadata": {"k": "v"},
        "version": 3,
        "window_expires_at": None,
        "request_id": None,
    }
    row.update(overrides)
    return domain.Conversation.from_row(row)


def test_from_row_reads_the_domain_types() -> None:
    c = conversation()
    assert c.state is domain.State.ACTIVE
    assert c.previous_genesys_conversation_ids == ("g-1",)
    assert c.etag == "3"
    assert c.position() == [NOW.isoformat(), str(uuid.UUID(int=1))]


def test_reply_window_is_open_until_it_expires() -> None:
    assert not conversation().reply_window_open(NOW)
    assert conversation(window_expires_at=NOW + dt.timedelta(seconds=1)).reply_window_open(NOW)
    assert not conversation(window_expires_at=NOW).reply_window_open(NOW)
    assert not conversation(window_expires_at=NOW - dt.timedelta(hours=1)).reply_window_open(NOW)


def test_etags() -> None:
    assert validation.parse_etag("", "etag") is None
    assert validation.parse_etag("7", "etag") == 7
    assert validation.parse_etag('"7"', "etag") == 7
    never_issued = validation.parse_etag("W/abc", "conversation.etag")
    with pytest.raises(Aborted):
        domain.check_etag(conversation(), never_issued)
    domain.check_etag(conversation(), None)
    domain.check_etag(conversation(), 3)
    with pytest.raises(Aborted):
        domain.check_etag(conversation(), 2)


def test_closed_conversations_refuse_changes() -> None:
    domain.check_open(conversation())
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_open(conversation(state="closed", closed_at=NOW))
    assert caught.value.reason == "CONVERSATION_CLOSED"


@pytest.mark.parametrize(
    ("value", "ok"), [("x", True), ("x" * 256, True), ("", False), ("   ", False), ("x" * 257, False), ("a\x00", False)]
)
def test_external_ids(value: str, ok: bool) -> None:
    if ok:
        assert domain.external_id(value, "conversation.whatsapp_conversation_id") == value
    else:
        with pytest.raises(InvalidArgument) as caught:
            domain.external_id(value, "conversation.whatsapp_conversation_id")
        assert caught.value.field == "conversation.whatsapp_conversation_id"


def test_optional_external_id_and_reason() -> None:
    assert domain.optional_external_id("", "f") is None
    assert domain.optional_external_id("g", "f") == "g"
    assert domain.reason("") == ""
    assert domain.reason("r" * 1000) == "r" * 1000
    with pytest.raises(InvalidArgument, match="reason"):
        domain.reason("r" * 1001)


def test_metadata_limit() -> None:
    assert domain.metadata({"a": 1}, "conversation.metadata") == {"a": 1}
    with pytest.raises(InvalidArgument) as caught:
        domain.metadata({"a": "x" * (16 * 1024)}, "conversation.metadata")
    assert caught.value.field == "conversation.metadata"


def test_update_paths() -> None:
    assert domain.update_paths(["metadata", "metadata", "genesys_conversation_id"]) == [
        "metadata",
        "genesys_conversation_id",
    ]
    for paths in ([], ["state"]):
        with pytest.raises(InvalidArgument) as caught:
            domain.update_paths(paths)
        assert caught.value.field == "update_mask"


def test_changes_keep_only_what_differs() -> None:
    current = conversation()
    same = domain.Changes(genesys_conversation_id="g-2", metadata={"k": "v"}).apply_to(current)
    assert same.empty
    moved = domain.Changes(genesys_conversation_id="g-3").apply_to(current)
    assert moved == domain.Changes(genesys_conversation_id="g-3") and not moved.empty
    replaced = domain.Changes(metadata={}).apply_to(current)
    assert replaced == domain.Changes(metadata={})


def test_filter_time_range() -> None:
    domain.Filter(active_from=NOW, active_to=NOW)
    with pytest.raises(InvalidArgument) as caught:
        domain.Filter(active_from=NOW, active_to=NOW - dt.timedelta(seconds=1))
    assert caught.value.field == "last_activity_end_time"


def test_filter_fingerprint_fields_distinguish_filters() -> None:
    assert domain.Filter().fingerprint_fields() != domain.Filter(state=domain.State.ACTIVE).fingerprint_fields()


def test_search_needs_a_criterion() -> None:
    with pytest.raises(InvalidArgument, match="at least one criterion"):
        domain.Criteria()
    domain.Criteria(metadata={"a": 1})


def test_page_positions() -> None:
    ident = uuid.uuid4()
    assert domain.conversation_position(None) is None
    assert domain.conversation_position([NOW.isoformat(), str(ident)]) == (NOW, ident)
    assert domain.history_position([NOW.isoformat(), 2, "x"]) == (NOW, 2, "x")
    for bad in ([], [1, 2], ["2026-01-01T00:00:00", str(ident)], ["nope", str(ident)], [NOW.isoformat(), "nope"]):
        with pytest.raises(InvalidArgument) as caught:
            domain.conversation_position(bad)
        assert caught.value.field == "page_token"
    for bad in ([NOW.isoformat(), "2", "x"], [NOW.isoformat(), 2], [NOW.isoformat(), 2, 3]):
        with pytest.raises(InvalidArgument):
            domain.history_position(bad)
