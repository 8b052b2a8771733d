"""Messages, their status reports and the reports parked for messages not recorded yet, in PostgreSQL.

Every function runs inside the caller's tenant transaction, but for `apply_status_once` and the reads given the
Database, which run in one of their own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from statemgr.domain.conversations import Conversation
from statemgr.domain.events import Event, EventType
from statemgr.domain.messages import KeyKind, Message, MessageKey, NewMessage, Status, StatusOutcome, StatusReport
from statemgr.store import queries
from statemgr.store.db import Connection, Cursor, Database, first_row

Q = queries.load("messages")


@dataclasses.dataclass(frozen=True, slots=True)
class Parked:
    """A report taken from the parking table; `expired` ones are not to be applied."""

    report: StatusReport
    expired: bool


async def lock_keys(conn: Connection, tenant_id: uuid.UUID, keys: list[MessageKey]) -> None:
    """Serialises work on these provider ids until commit (always in one order, so two callers cannot deadlock)."""
    for key in sorted(keys, key=lambda k: (k.kind, k.value)):
        await conn.execute(Q["lock_key"], {"lock": f"message:{tenant_id}:{key.kind}:{key.value}"})


async def lock_and_find(conn: Connection, tenant_id: uuid.UUID, keys: list[MessageKey]) -> list[Message]:
    """`lock_keys`, then `find_by_keys`, in one round trip (pipelined: the SELECT starts once the locks are held)."""
    async with conn.pipeline():
        finding = await queue_lock_and_find(conn, tenant_id, keys)
    return await found(finding)


async def queue_lock_and_find(conn: Connection, tenant_id: uuid.UUID, keys: list[MessageKey]) -> Cursor:
    """Sends `lock_and_find`'s statements inside the caller's pipeline; `found` reads the result after its sync."""
    for key in sorted(keys, key=lambda k: (k.kind, k.value)):
        await conn.execute(Q["lock_key"], {"lock": f"message:{tenant_id}:{key.kind}:{key.value}"})
    return await conn.execute(Q["find_by_keys"], {"tenant_id": tenant_id, **_key_params(keys)})


async def found(cursor: Cursor) -> list[Message]:
    """The messages `queue_lock_and_find` found."""
    return [Message.from_row(row) for row in await cursor.fetchall()]


async def find_by_keys(conn: Connection, tenant_id: uuid.UUID, keys: list[MessageKey]) -> list[Message]:
    """The messages holding any of these provider ids (at most one per id)."""
    rows = await (await conn.execute(Q["find_by_keys"], {"tenant_id": tenant_id, **_key_params(keys)})).fetchall()
    return [Message.from_row(row) for row in rows]


async def find_by_key(source: Connection | Database, tenant_id: uuid.UUID, key: MessageKey) -> Message | None:
    """The message holding one provider id (a Database: read in a transaction of its own, one round trip)."""
    row = await first_row(source, Q["find_by_keys"], {"tenant_id": tenant_id, **_key_params([key])})
    return Message.from_row(row) if row else None


def insert_params(tenant_id: uuid.UUID, new: NewMessage, message_id: uuid.UUID) -> dict[str, Any]:
    """The parameters of an INSERT of `new` as `message_id`."""
    return {
        "tenant_id": tenant_id,
        "id": message_id,
        "conversation_id": new.conversation_id,
        "whatsapp_message_id": new.whatsapp_message_id,
        "genesys_message_id": new.genesys_message_id,
        "direction": new.direction.value,
        "status": new.status.value,
        "content": new.content,
        "media_urls": new.media_urls,
        "sent_at": new.sent_at,
    }


async def queue_any_parked(conn: Connection, tenant_id: uuid.UUID, keys: list[MessageKey]) -> Cursor:
    """Sends the question whether reports are parked for these ids (ask under their locks: lock_keys)."""
    return await conn.execute(Q["any_parked"], {"tenant_id": tenant_id, **_key_params(keys)})


async def any_parked(cursor: Cursor) -> bool:
    row = await cursor.fetchone()
    return bool(row and row["parked"])


async def queue_insert_into_open(
    conn: Connection, tenant_id: uuid.UUID, new: NewMessage, message_id: uuid.UUID, recorded: Event
) -> Cursor:
    """Sends insert_into_open: `new` as `message_id` with its `recorded` event, if its conversation is open (run it
    after this transaction locked the conversation: queue_touch). `inserted_into_open` reads the outcome."""
    params = insert_params(tenant_id, new, message_id)
    event = {"event_id": uuid.uuid4(), "event_type": recorded.type.value, "event_payload": Jsonb(recorded.payload())}
    return await conn.execute(Q["insert_into_open"], {**params, **event})


async def inserted_into_open(cursor: Cursor) -> Message | None:
    """The message insert_into_open recorded; None when the conversation was closed or missing."""
    row = await cursor.fetchone()
    return Message.from_row(row) if row else None


async def get(source: Connection | Database, tenant_id: uuid.UUID, message_id: uuid.UUID) -> Message | None:
    """The message (a Database: read in a transaction of its own, one round trip)."""
    row = await first_row(source, Q["get_message"], {"tenant_id": tenant_id, "id": message_id})
    return Message.from_row(row) if row else None


async def list_page(
    conn: Connection,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None,
) -> list[Message]:
    """A conversation's messages in the order recorded, after `after` (created_at, id)."""
    after_time, after_id = after or (None, None)
    params = {
        "tenant_id": tenant_id,
        "conversation_id": conversation_id,
        "limit": limit,
        "after_time": after_time,
        "after_id": after_id,
    }
    rows = await (await conn.execute(Q["list_messages"], params)).fetchall()
    return [Message.from_row(row) for row in rows]


async def last(conn: Connection, tenant_id: uuid.UUID, conversation_id: uuid.UUID, limit: int) -> list[Message]:
    """The last `limit` messages of a conversation, oldest first."""
    params = {"tenant_id": tenant_id, "conversation_id": conversation_id, "limit": limit}
    rows = await (await conn.execute(Q["last_messages"], params)).fetchall()
    return [Message.from_row(row) for row in rows]


async def apply_status(conn: Connection, tenant_id: uuid.UUID, report: StatusReport) -> StatusOutcome | None:
    """Applies a report (one statement); None when no message has the report's id."""
    row = await (await conn.execute(Q["apply_status"], _report_params(tenant_id, report))).fetchone()
    return _outcome(row)


async def apply_status_once(db: Database, tenant_id: uuid.UUID, report: StatusReport) -> StatusOutcome | None:
    """`apply_status` and, if it changed the message, its event, as a transaction of its own in one round trip
    (Database.once). None when no message has the report's id: then nothing was written."""
    params = _report_params(tenant_id, report)
    event = {**params, "event_type": EventType.MESSAGE_STATUS_CHANGED.value}
    applied, _ = await db.once(tenant_id, [(Q["apply_status"], params), (Q["append_status_event"], event)])
    return _outcome(applied[0] if applied else None)


async def apply_statuses(
    conn: Connection, tenant_id: uuid.UUID, reports: list[StatusReport]
) -> list[StatusOutcome | None]:
    """Applies reports in order, pipelined: one round trip for the lot. None for each id no message has."""
    if not reports:
        return []
    async with conn.pipeline():
        cursors = [await conn.execute(Q["apply_status"], _report_params(tenant_id, r)) for r in reports]
    return [_outcome(await cursor.fetchone()) for cursor in cursors]


async def park(conn: Connection, tenant_id: uuid.UUID, report: StatusReport, ttl_seconds: int) -> None:
    """Parks a report for an id no message has yet, for `ttl_seconds`."""
    await conn.execute(Q["park_status"], {**_report_params(tenant_id, report), "ttl_seconds": ttl_seconds})


async def take_parked(conn: Connection, tenant_id: uuid.UUID, keys: list[MessageKey]) -> list[Parked]:
    """Removes the reports parked for these ids and returns them, oldest report first."""
    rows = await (await conn.execute(Q["take_parked"], {"tenant_id": tenant_id, **_key_params(keys)})).fetchall()
    return [Parked(_parked_report(row), bool(row["expired"])) for row in rows]


async def prune_parked(conn: Connection, tenant_id: uuid.UUID, limit: int = 1_000) -> int:
    """Deletes up to `limit` expired parked reports of the tenant; returns how many."""
    return int((await _row(conn, "prune_parked", {"tenant_id": tenant_id, "limit": limit}))["expired"])


async def count_parked(conn: Connection, tenant_id: uuid.UUID) -> tuple[int, int]:
    """The tenant's parked reports: (still waiting, expired but not pruned yet)."""
    row = await _row(conn, "count_parked", {"tenant_id": tenant_id})
    return int(row["waiting"]), int(row["expired"])


async def retry(conn: Connection, tenant_id: uuid.UUID, message_id: uuid.UUID, max_retries: int) -> Message | None:
    """FAILED -> PENDING with retry_count + 1 and a history row; None when not FAILED, at the limit, or missing."""
    params = {"tenant_id": tenant_id, "id": message_id, "max_retries": max_retries}
    row = await (await conn.execute(Q["retry_message"], params)).fetchone()
    return Message.from_row(row) if row else None


async def set_provider_ids(
    conn: Connection, tenant_id: uuid.UUID, message_id: uuid.UUID, keys: list[MessageKey]
) -> Message | None:
    """Attaches the provider ids the message lacks; None when it lacks none of them (or is missing)."""
    params = {"tenant_id": tenant_id, "id": message_id, **_key_params(keys)}
    row = await (await conn.execute(Q["set_provider_id"], params)).fetchone()
    return Message.from_row(row) if row else None


async def queue_touch(
    conn: Connection, tenant_id: uuid.UUID, conversation_id: uuid.UUID, at: dt.datetime, inbound: bool
) -> Cursor:
    """Sends touch_conversation (activity at `at`; inbound, the reply window to `at` + 24 h) inside the caller's
    pipeline; `touched` reads it."""
    params = {"tenant_id": tenant_id, "conversation_id": conversation_id, "time": at, "inbound": inbound}
    return await conn.execute(Q["touch_conversation"], params)


async def touched(cursor: Cursor) -> Conversation | None:
    """The conversation a queued touch moved; None when it was missing or closed."""
    row = await cursor.fetchone()
    return Conversation.from_row(row) if row else None


def _report_params(tenant_id: uuid.UUID, report: StatusReport) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        **report.key.params(),
        "status": report.status.value,
        "time": report.time,
        "error_code": report.error_code,
        "error_message": report.error_message,
    }


def _outcome(row: dict[str, Any] | None) -> StatusOutcome | None:
    if row is None:
        return None
    return StatusOutcome(Message.from_row(row), changed=row["changed"])


def _key_params(keys: list[MessageKey]) -> dict[str, str | None]:
    params: dict[str, str | None] = {"whatsapp_message_id": None, "genesys_message_id": None}
    for key in keys:
        params.update({name: value for name, value in key.params().items() if value is not None})
    return params


def _parked_report(row: dict[str, Any]) -> StatusReport:
    kind = KeyKind.WHATSAPP if row["whatsapp_message_id"] is not None else KeyKind.GENESYS
    key = MessageKey(kind, row["whatsapp_message_id"] or row["genesys_message_id"])
    return StatusReport(key, Status(row["status"]), row["status_time"], row["error_code"], row["error_message"])


async def _row(conn: Connection, query: str, params: dict[str, Any]) -> dict[str, Any]:
    row = await (await conn.execute(Q[query], params)).fetchone()
    if row is None:
        raise LookupError(f"{query} returned no row")
    return row
