"""Conversations: the resource, its state machine, and the checks on what callers send. Pure: no I/O.

State machine (DESIGN.md): active <-> waiting; active|waiting|error -> closed; active|waiting -> error;
error -> active. Closed is final: a new message after closure opens a new conversation. Moving to the state a
conversation is already in is not a move, so it is refused like any other illegal one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from statemgr.domain import validation
from statemgr.domain.errors import Aborted, FailedPrecondition, InvalidArgument

LIST_PAGE_SIZE = (50, 500)
HISTORY_PAGE_SIZE = (100, 1_000)
UPDATABLE_FIELDS = ("genesys_conversation_id", "metadata")
SEARCH_FIELDS = ("whatsapp_conversation_id", "genesys_conversation_id", "metadata", "customer_phone_number")


class State(enum.StrEnum):
    ACTIVE = "active"
    WAITING = "waiting"
    ERROR = "error"
    CLOSED = "closed"


TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.ACTIVE: frozenset({State.WAITING, State.ERROR, State.CLOSED}),
    State.WAITING: frozenset({State.ACTIVE, State.ERROR, State.CLOSED}),
    State.ERROR: frozenset({State.ACTIVE, State.CLOSED}),
    State.CLOSED: frozenset(),
}


def can_move(source: State, target: State) -> bool:
    return target in TRANSITIONS[source]


def check_move(source: State, target: State) -> None:
    """FAILED_PRECONDITION unless the state machine allows source -> target."""
    if source is State.CLOSED:
        raise FailedPrecondition("CONVERSATION_CLOSED", "the conversation is closed, and closed is final")
    if not can_move(source, target):
        allowed = ", ".join(sorted(TRANSITIONS[source]))
        raise FailedPrecondition(
            "ILLEGAL_STATE_TRANSITION",
            f"a conversation cannot move from {source} to {target}; from {source}: {allowed}",
        )


def already_in(conversation: Conversation, target: State) -> bool:
    """Whether a move to `target` is a repeat: staying is not a move (can_move says no), but it is no error either."""
    return conversation.state is target


def check_open(conversation: Conversation) -> None:
    """FAILED_PRECONDITION when the conversation is closed."""
    if conversation.state is State.CLOSED:
        raise FailedPrecondition("CONVERSATION_CLOSED", "the conversation is closed, and closed is final")


@dataclasses.dataclass(frozen=True, slots=True)
class Conversation:
    id: uuid.UUID
    whatsapp_conversation_id: str
    genesys_conversation_id: str | None
    previous_genesys_conversation_ids: tuple[str, ...]
    customer_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    state: State
    created_at: dt.datetime
    closed_at: dt.datetime | None
    last_activity: dt.datetime
    metadata: dict[str, Any]
    version: int
    window_expires_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Conversation:
        """From a `conversations` row; columns this class does not know are ignored."""
        values = {field.name: row[field.name] for field in dataclasses.fields(cls)}
        values["state"] = State(values["state"])
        values["previous_genesys_conversation_ids"] = tuple(values["previous_genesys_conversation_ids"])
        return cls(**values)

    @property
    def etag(self) -> str:
        return str(self.version)

    def reply_window_open(self, now: dt.datetime) -> bool:
        """Whether an agent may still send a free-form reply (WhatsApp's 24-hour customer-service window)."""
        return self.window_expires_at is not None and self.window_expires_at > now

    def position(self) -> list[str]:
        """The sort key of list and search pages (newest first), for page tokens."""
        return [self.created_at.isoformat(), str(self.id)]


@dataclasses.dataclass(frozen=True, slots=True)
class NewConversation:
    """What CreateConversation asks for, checked."""

    whatsapp_conversation_id: str
    genesys_conversation_id: str | None = None
    customer_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    request_id: uuid.UUID | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Changes:
    """What UpdateConversation changes; None keeps the stored value."""

    genesys_conversation_id: str | None = None
    metadata: dict[str, Any] | None = None

    def apply_to(self, current: Conversation) -> Changes:
        """Only what actually differs from `current`: an update that changes nothing writes nothing."""
        genesys = self.genesys_conversation_id
        return Changes(
            genesys_conversation_id=None if genesys == current.genesys_conversation_id else genesys,
            metadata=None if self.metadata == current.metadata else self.metadata,
        )

    @property
    def empty(self) -> bool:
        return self.genesys_conversation_id is None and self.metadata is None


@dataclasses.dataclass(frozen=True, slots=True)
class Filter:
    """ListConversations' filters; None means any."""

    state: State | None = None
    agent_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    active_from: dt.datetime | None = None
    active_to: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.active_from and self.active_to and self.active_to < self.active_from:
            raise InvalidArgument("last_activity_end_time", "is before last_activity_start_time")

    def fingerprint_fields(self) -> dict[str, str | None]:
        return {f.name: _text(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True, slots=True)
class Criteria:
    """SearchConversations' criteria, all of which must match. `customer_name_key` is folded for search."""

    whatsapp_conversation_id: str | None = None
    genesys_conversation_id: str | None = None
    metadata: dict[str, Any] | None = None
    customer_phone_number: str | None = None
    customer_name_key: str | None = None

    def __post_init__(self) -> None:
        if all(getattr(self, f.name) is None for f in dataclasses.fields(self)):
            names = ", ".join((*SEARCH_FIELDS, "customer_name"))
            raise InvalidArgument("whatsapp_conversation_id", f"give at least one criterion of {names}")

    def fingerprint_fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One timeline entry. `kind` is the name of the HistoryEntry proto's oneof field it fills
    (created, state_change, assignment, genesys_mapping_change, message_recorded, message_status_change) and `data`
    that message's fields, as the history query's branch for that kind builds them."""

    at: dt.datetime
    rank: int
    entry_id: str
    kind: str
    data: Mapping[str, Any]

    def position(self) -> list[Any]:
        return [self.at.isoformat(), self.rank, self.entry_id]


def external_id(value: str, field: str) -> str:
    """A required WhatsApp or Genesys id: 1-256 characters."""
    return validation.required_text(value, field, validation.MAX_EXTERNAL_ID)


def optional_external_id(value: str, field: str) -> str | None:
    """An external id, or None when empty."""
    return validation.required_text(value, field, validation.MAX_EXTERNAL_ID) if value else None


def reason(value: str, field: str = "reason") -> str:
    return validation.bounded_text(value, field, validation.MAX_REASON)


def metadata(value: Mapping[str, Any], field: str) -> dict[str, Any]:
    return validation.bounded_struct(value, field)


def check_etag(conversation: Conversation, expected: int | None) -> None:
    """ABORTED when the caller's etag is not the conversation's current one."""
    if expected is not None and expected != conversation.version:
        raise Aborted("the conversation changed since the etag was read; read it again and retry")


def update_paths(paths: Sequence[str], field: str = "update_mask") -> list[str]:
    """The fields an UpdateConversation mask names; INVALID_ARGUMENT for none or an unknown one."""
    return validation.mask_paths(paths, UPDATABLE_FIELDS, field)


def conversation_position(
    position: list[Any] | None, field: str = "page_token"
) -> tuple[dt.datetime, uuid.UUID] | None:
    """The (created_at, id) a list or search page token continues after."""
    if position is None:
        return None
    try:
        created, ident = position
        return _aware(dt.datetime.fromisoformat(created)), uuid.UUID(ident)
    except (TypeError, ValueError):
        raise InvalidArgument(field, "is malformed") from None


def history_position(position: list[Any] | None, field: str = "page_token") -> tuple[dt.datetime, int, str] | None:
    """The (time, rank, entry id) a history page token continues after."""
    if position is None:
        return None
    try:
        at, rank, entry_id = position
        if not isinstance(rank, int) or not isinstance(entry_id, str):
            raise TypeError
        return _aware(dt.datetime.fromisoformat(at)), rank, entry_id
    except (TypeError, ValueError):
        raise InvalidArgument(field, "is malformed") from None


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a naive time")
    return value


def _text(value: object) -> str | None:
    return None if value is None else str(value)
