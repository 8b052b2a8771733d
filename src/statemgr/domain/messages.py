"""Messages, their delivery status and its one rank. Pure: no I/O.

The rank (DESIGN.md) is PENDING < SENT < FAILED < DELIVERED < READ. A provider report moves the status up, never
down, and fills the reported status's own time; PostgreSQL applies it in one statement (store/queries/messages.sql,
`apply_status`). :func:`merge` is the same rule in Python: the specification the unit tests pin down and the
integration tests hold the SQL to.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from typing import Any

from statemgr.domain import validation
from statemgr.domain.errors import AlreadyExists, InvalidArgument

MAX_CONTENT_BYTES = 64 * 1024
MAX_MEDIA_URLS = 20
MAX_ERROR_CODE = 64
MAX_ERROR_MESSAGE = 2_000
MAX_BATCH = 1_000


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Status(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"
    READ = "read"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {status: rank for rank, status in enumerate(Status, start=1)}
REPORTABLE = (Status.SENT, Status.DELIVERED, Status.READ, Status.FAILED)
RECORDABLE = (Status.PENDING, Status.SENT)


class KeyKind(enum.StrEnum):
    """Which provider's id names a message."""

    WHATSAPP = "whatsapp"
    GENESYS = "genesys"


@dataclasses.dataclass(frozen=True, slots=True)
class MessageKey:
    kind: KeyKind
    value: str

    def params(self) -> dict[str, str | None]:
        """The named query parameters: this id under its provider's name, None under the other's."""
        return {
            "whatsapp_message_id": self.value if self.kind is KeyKind.WHATSAPP else None,
            "genesys_message_id": self.value if self.kind is KeyKind.GENESYS else None,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """The status part of a message: what a report can change."""

    status: Status
    sent_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    read_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    id: uuid.UUID
    tenant_id: uuid.UUID
    conversation_id: uuid.UUID
    whatsapp_message_id: str | None
    genesys_message_id: str | None
    direction: Direction
    status: Status
    content: str
    media_urls: list[str]
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    read_at: dt.datetime | None
    failed_at: dt.datetime | None
    error_code: str | None
    error_message: str | None
    retry_count: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Message:
        values = {field.name: row[field.name] for field in dataclasses.fields(cls)}
        values["direction"] = Direction(row["direction"])
        values["status"] = Status(row["status"])
        values["media_urls"] = list(row["media_urls"] or ())
        return cls(**values)

    def position(self) -> list[str]:
        """The sort key of list pages (the order recorded), for page tokens."""
        return [self.created_at.isoformat(), str(self.id)]


@dataclasses.dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to record. Two records of one provider id are the same message when :func:`same_message`."""

    conversation_id: uuid.UUID
    direction: Direction
    whatsapp_message_id: str | None
    genesys_message_id: str | None
    status: Status
    content: str
    media_urls: list[str]
    sent_at: dt.datetime | None

    def keys(self) -> list[MessageKey]:
        keys = []
        if self.whatsapp_message_id is not None:
            keys.append(MessageKey(KeyKind.WHATSAPP, self.whatsapp_message_id))
        if self.genesys_message_id is not None:
            keys.append(MessageKey(KeyKind.GENESYS, self.genesys_message_id))
        return keys


@dataclasses.dataclass(frozen=True, slots=True)
class StatusReport:
    """A provider's report about one message. ``time`` is provider time (arrival time when it gave none)."""

    key: MessageKey
    status: Status
    time: dt.datetime
    error_code: str = ""
    error_message: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class StatusOutcome:
    """What a report did: the message after it (None when parked), and whether anything changed."""

    message: Message | None
    changed: bool

    @property
    def parked(self) -> bool:
        return self.message is None


def merge(current: Delivery, report: StatusReport) -> Delivery:
    """The delivery after ``report``: the status moves up only; the reported status's time and details are filled.

    Moving up to a status overwrites that status's time (it can only be set already after a retry took the message
    back to PENDING); otherwise a time already known stays. Failure details fill only empty ones, so a duplicate
    FAILED without details erases nothing, and DELIVERED after FAILED keeps them.
    """
    moves_up = report.status.rank > current.status.rank
    times = {column: getattr(current, column) for column in _TIME_COLUMNS.values()}
    column = _TIME_COLUMNS[report.status]
    if moves_up or times[column] is None:
        times[column] = report.time
    code, text = current.error_code, current.error_message
    if report.status is Status.FAILED:
        code = (report.error_code or code) if moves_up else (code or report.error_code or None)
        text = (report.error_message or text) if moves_up else (text or report.error_message or None)
    status = report.status if moves_up else current.status
    return Delivery(status, error_code=code or None, error_message=text or None, **times)


_TIME_COLUMNS = {
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.READ: "read_at",
    Status.FAILED: "failed_at",
}


def same_message(existing: Message, new: NewMessage) -> bool:
    """Whether ``new`` repeats ``existing``: same conversation, direction, content and media, and no provider id
    that contradicts one already stored. Status and times are not compared: they change as reports arrive."""
    return (
        existing.conversation_id == new.conversation_id
        and existing.direction == new.direction
        and existing.content == new.content
        and existing.media_urls == new.media_urls
        and _compatible(existing.whatsapp_message_id, new.whatsapp_message_id)
        and _compatible(existing.genesys_message_id, new.genesys_message_id)
    )


def _compatible(stored: str | None, given: str | None) -> bool:
    return stored is None or given is None or stored == given


def conflict(existing: Message) -> AlreadyExists:
    return AlreadyExists("message", "a message with this provider id exists with different content", str(existing.id))


def content(value: str, field: str) -> str:
    if len(value.encode()) > MAX_CONTENT_BYTES:
        raise InvalidArgument(field, f"is larger than {MAX_CONTENT_BYTES} bytes")
    return validation.bounded_text(value, field, MAX_CONTENT_BYTES)


def media_urls(values: list[str], field: str) -> list[str]:
    if len(values) > MAX_MEDIA_URLS:
        raise InvalidArgument(field, f"has {len(values)} entries; the limit is {MAX_MEDIA_URLS}")
    return [validation.required_text(url, f"{field}[{i}]", validation.MAX_URL) for i, url in enumerate(values)]


def provider_id(value: str, field: str) -> str | None:
    """An optional provider message id: None when empty, else 1-256 characters."""
    return validation.required_text(value, field) if value else None


def key_of(whatsapp_message_id: str, genesys_message_id: str, which: str | None, prefix: str = "") -> MessageKey:
    """The key a request names through its `key` oneof (``which`` is the set field's name, or None)."""
    if which == "genesys_message_id":
        return MessageKey(KeyKind.GENESYS, validation.required_text(genesys_message_id, prefix + which))
    if which == "whatsapp_message_id":
        return MessageKey(KeyKind.WHATSAPP, validation.required_text(whatsapp_message_id, prefix + which))
    raise InvalidArgument(
        prefix + "whatsapp_message_id", "one of whatsapp_message_id and genesys_message_id is required"
    )


def reported_status(status: Status | None, field: str) -> Status:
    if status not in REPORTABLE:
        raise InvalidArgument(field, "must be SENT, DELIVERED, READ or FAILED")
    return status


def error_details(code: str, message: str, prefix: str = "") -> tuple[str, str]:
    return (
        validation.bounded_text(code, prefix + "error_code", MAX_ERROR_CODE),
        validation.bounded_text(message, prefix + "error_message", MAX_ERROR_MESSAGE),
    )
