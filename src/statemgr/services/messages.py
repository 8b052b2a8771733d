"""Message use cases: recording (idempotent per provider id), status reports, parking, retries.

Each runs in one tenant transaction and writes its events to the outbox in it; events carry ids and statuses,
never content. A report for a message id not recorded yet is parked in PostgreSQL and applied inside the
transaction that records the message (or attaches the id to it); parked reports expire after
STATEMGR_PARKED_STATUS_TTL_SECONDS. Expired ones are ignored, pruned in bounded batches whenever the tenant parks
another report (or by `prune_parked`), and counted in `parked_counts()`.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import uuid
from typing import NoReturn

from psycopg import errors as pg_errors

from statemgr import metrics
from statemgr.cache import Cache
from statemgr.config import Settings
from statemgr.domain import messages as domain
from statemgr.domain import paging
from statemgr.domain.conversations import Conversation, check_open
from statemgr.domain.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from statemgr.domain.events import Event, EventType
from statemgr.domain.paging import Page, PageRequest
from statemgr.events import outbox
from statemgr.services import conversations
from statemgr.store import conversations as conversation_store
from statemgr.store import messages as store
from statemgr.store.db import Connection, Cursor, Database, Pipelined

_RACES = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
PRUNE_BATCH = 100  # expired parked reports deleted on the way whenever a tenant parks one
# Counts since the process started (approximate: a rolled-back transaction's parking is counted too).
_PARKED = collections.Counter[str]()


def parked_counts() -> dict[str, int]:
    """How many status reports this process parked, applied from parking, and found expired (for metrics)."""
    return {name: _PARKED[name] for name in ("parked", "applied", "expired")}


@dataclasses.dataclass(frozen=True, slots=True)
class Recorded:
    """A recorded message; `conversation` is its conversation after the recording, when this call created it."""

    message: domain.Message
    created: bool
    conversation: Conversation | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ItemResult:
    """The outcome of one report of a batch: an outcome, or the item's own error."""

    outcome: domain.StatusOutcome | None = None
    error: InvalidArgument | None = None


class MessageService:
    """Every MessageService RPC, in domain terms. `tenant_id` always comes from the caller's API key."""

    def __init__(self, db: Database, settings: Settings, cache: Cache) -> None:
        self._db = db
        self._cache = cache
        self._ttl = settings.parked_status_ttl_seconds
        self._max_retries = settings.max_message_retries

    async def record(self, tenant_id: uuid.UUID, new: domain.NewMessage) -> Recorded:
        recorded = await record(self._db, tenant_id, new)
        await invalidate_touched(self._cache, tenant_id, recorded)
        return recorded

    async def get(self, tenant_id: uuid.UUID, message_id: uuid.UUID) -> domain.Message:
        return _found(await store.get(self._db, tenant_id, message_id), str(message_id))

    async def lookup(self, tenant_id: uuid.UUID, key: domain.MessageKey) -> domain.Message:
        found = await store.find_by_key(self._db, tenant_id, key)
        return _found(found, f"with this {key.kind} message id")

    async def list_page(
        self, tenant_id: uuid.UUID, conversation_id: uuid.UUID, page: PageRequest
    ) -> Page[domain.Message]:
        """A conversation's messages in the order recorded."""
        query = paging.fingerprint("ListMessages", conversation_id=str(conversation_id))
        after = _position(paging.decode(page.token, str(tenant_id), query))
        async with self._db.tenant(tenant_id) as conn:
            if await conversation_store.get(conn, tenant_id, conversation_id) is None:
                raise NotFound("conversation", str(conversation_id))
            rows = await store.list_page(conn, tenant_id, conversation_id, page.size + 1, after)
        return paging.page_of(rows, page.size, str(tenant_id), query, lambda m: m.position())

    async def attach_ids(
        self, tenant_id: uuid.UUID, message_id: uuid.UUID, keys: list[domain.MessageKey]
    ) -> domain.Message:
        """Attaches provider ids; ALREADY_EXISTS when another message has one or this one has another."""
        async with self._db.tenant(tenant_id) as conn:
            await store.lock_keys(conn, tenant_id, keys)
            message = _found(await store.get(conn, tenant_id, message_id), str(message_id))
            missing = _ids_to_attach(message, keys, await store.find_by_keys(conn, tenant_id, keys))
            if not missing:
                return message
            updated = await store.set_provider_ids(conn, tenant_id, message_id, missing)
            if updated is None:  # the row is locked by the update: it cannot have gone or changed ids
                raise Aborted("the message changed meanwhile; retry")
            return await _apply_parked(conn, tenant_id, updated, missing)

    async def update_status(self, tenant_id: uuid.UUID, report: domain.StatusReport) -> domain.StatusOutcome:
        """Applies the report (with its event, if it changed the message) in one round trip; for an id no message
        has yet, a second transaction applies it if the message was recorded meanwhile, else parks it."""
        outcome = await store.apply_status_once(self._db, tenant_id, report)
        if outcome is not None:
            return outcome
        metrics.GENERAL_PATH.labels("UpdateMessageStatus", "unknown_message").inc()
        async with self._db.tenant(tenant_id) as conn:
            outcome = await self._apply_or_park(conn, tenant_id, report)
            await _prune_parked(conn, tenant_id)
            return await _noted(conn, tenant_id, outcome)

    async def batch_update_status(
        self, tenant_id: uuid.UUID, items: list[domain.StatusReport | InvalidArgument]
    ) -> list[ItemResult]:
        """Applies the valid reports in one transaction (pipelined); an invalid item gets its error, stops nothing.

        Reports are applied in provider-id order, so two batches touching the same messages lock them in the same
        order and cannot deadlock; the results keep the request's order.
        """
        results = [ItemResult(error=item) if isinstance(item, InvalidArgument) else ItemResult() for item in items]
        valid = [(i, item) for i, item in enumerate(items) if not isinstance(item, InvalidArgument)]
        valid.sort(key=lambda pair: (pair[1].key.kind, pair[1].key.value))
        try:
            async with self._db.tenant(tenant_id) as conn:
                outcomes = await store.apply_statuses(conn, tenant_id, [report for _, report in valid])
                for (index, report), outcome in zip(valid, outcomes, strict=True):
                    if outcome is None:
                        outcome = await self._apply_or_park(conn, tenant_id, report)
                    results[index] = ItemResult(outcome=await _noted(conn, tenant_id, outcome))
                if None in outcomes:
                    await _prune_parked(conn, tenant_id)
        except _RACES as exc:  # another writer's lock order crossed ours (a message addressed by both ids)
            raise Aborted("a concurrent status update won; retry the batch") from exc
        return results

    async def retry(self, tenant_id: uuid.UUID, message_id: uuid.UUID) -> domain.Message:
        """FAILED -> PENDING, counting the attempt; FAILED_PRECONDITION when not FAILED or out of retries."""
        async with self._db.tenant(tenant_id) as conn:
            retried = await store.retry(conn, tenant_id, message_id, self._max_retries)
            if retried is None:
                current = _found(await store.get(conn, tenant_id, message_id), str(message_id))
                raise _not_retryable(current, self._max_retries)
            await outbox.append(conn, tenant_id, _message_event(EventType.MESSAGE_RETRIED, retried))
        return retried

    async def prune_parked(self, tenant_id: uuid.UUID, limit: int = 1_000) -> int:
        """Deletes up to `limit` of the tenant's expired parked reports (for a periodic job); returns how many.

        Expired reports are never applied, pruned or not: pruning keeps the table small for tenants that stopped
        parking (the cheap path prunes whenever a tenant parks).
        """
        async with self._db.tenant(tenant_id) as conn:
            pruned = await store.prune_parked(conn, tenant_id, limit)
        _PARKED["expired"] += pruned
        return pruned

    async def _apply_or_park(
        self, conn: Connection, tenant_id: uuid.UUID, report: domain.StatusReport
    ) -> domain.StatusOutcome:
        """For a report whose message this transaction found no trace of: apply it if the message was recorded
        meanwhile, else park it.

        The id's lock makes a recording in flight either commit first (and the second try finds the message) or
        wait for this transaction (and take the parked report when it takes parked ones).
        """
        await store.lock_keys(conn, tenant_id, [report.key])
        outcome = await store.apply_status(conn, tenant_id, report)
        if outcome is not None:
            return outcome
        await store.park(conn, tenant_id, report, self._ttl)
        _PARKED["parked"] += 1
        return domain.StatusOutcome(None, changed=False)


async def record(db: Database, tenant_id: uuid.UUID, new: domain.NewMessage) -> Recorded:
    """Records `new` in one transaction, or returns the message already recorded under its ids (ALREADY_EXISTS when
    they belong to a message with different content: see domain.messages.same_message).

    Two round trips: the ids locked and looked for, and whether reports are parked for them (with BEGIN); then the
    conversation touched and the message inserted with its event (with COMMIT). Parked reports are applied before
    the COMMIT (`recorded_applying_parked`). NOT_FOUND or FAILED_PRECONDITION when the conversation is missing or
    closed (nothing written).
    """
    async with db.pipelined(tenant_id) as transaction:
        recorded = await _record(transaction, tenant_id, new)
    if recorded is None:  # nothing was written: say why, from a read of the conversation
        await _conversation_refuses(db, tenant_id, new.conversation_id)
    return recorded


async def _record(transaction: Pipelined, tenant_id: uuid.UUID, new: domain.NewMessage) -> Recorded | None:
    """`record`'s transaction; None when the conversation is not open."""
    conn = transaction.conn
    finding = await store.queue_lock_and_find(conn, tenant_id, new.keys())
    asking = await store.queue_any_parked(conn, tenant_id, new.keys())
    existing = await store.found(finding)  # the first round trip
    if existing:
        return Recorded(repeat_of(existing, new), created=False)
    recording = await queue_recording(conn, tenant_id, new)
    if await store.any_parked(asking):
        metrics.GENERAL_PATH.labels("RecordMessage", "parked_reports").inc()
        recorded = await recorded_applying_parked(conn, tenant_id, recording, new.keys())
    else:
        await transaction.commit()  # the second round trip
        recorded = await recording_read(recording)
    return None if recorded is None else Recorded(recorded[1], created=True, conversation=recorded[0])


Recording = tuple[Cursor, Cursor]


async def queue_recording(conn: Connection, tenant_id: uuid.UUID, new: domain.NewMessage) -> Recording:
    """Queues the recording of `new` (its ids locked and unused) in a pipeline: its conversation touched (activity,
    and the reply window for an inbound message), then the message and its event if the conversation is open."""
    message_id = uuid.uuid4()
    inbound = new.direction is domain.Direction.INBOUND
    touching = await store.queue_touch(conn, tenant_id, new.conversation_id, _activity_time(new), inbound)
    inserting = await store.queue_insert_into_open(conn, tenant_id, new, message_id, recorded_event(new, message_id))
    return touching, inserting


async def recording_read(recording: Recording) -> tuple[Conversation, domain.Message] | None:
    """The conversation after a queued recording and the message; None when the conversation was not open."""
    touching, inserting = recording
    conversation, message = await store.touched(touching), await store.inserted_into_open(inserting)
    return None if conversation is None or message is None else (conversation, message)


async def recorded_applying_parked(
    conn: Connection, tenant_id: uuid.UUID, recording: Recording, keys: list[domain.MessageKey]
) -> tuple[Conversation, domain.Message] | None:
    """A queued recording read at once, with the reports parked for the message's ids applied to it (and their
    events), before the transaction commits; None when the conversation was not open."""
    recorded = await recording_read(recording)
    if recorded is None:
        return None
    conversation, message = recorded
    return conversation, await _apply_parked(conn, tenant_id, message, keys)


async def invalidate_touched(cache: Cache, tenant_id: uuid.UUID, recorded: Recorded) -> None:
    """After the commit: a new message changed its conversation (activity, etag, and the reply window when inbound).

    ResolveOutbound's routes stay: a message changes none of what they hold.
    """
    if recorded.conversation is not None:
        await conversations.invalidate(cache, tenant_id, recorded.conversation, routes=False)


async def _noted(conn: Connection, tenant_id: uuid.UUID, outcome: domain.StatusOutcome) -> domain.StatusOutcome:
    """`outcome`, its change written to the outbox (the message's row lock orders one message's events)."""
    if outcome.changed:
        await outbox.append(conn, tenant_id, _status_event(outcome))
    return outcome


async def _prune_parked(conn: Connection, tenant_id: uuid.UUID) -> None:
    _PARKED["expired"] += await store.prune_parked(conn, tenant_id, PRUNE_BATCH)


def repeat_of(existing: list[domain.Message], new: domain.NewMessage) -> domain.Message:
    """The message `new` repeats; ALREADY_EXISTS when its ids are another message's (or two messages')."""
    first = existing[0]
    if len(existing) > 1 or not domain.same_message(first, new):
        raise domain.conflict(first)
    return first


async def _apply_parked(
    conn: Connection, tenant_id: uuid.UUID, message: domain.Message, keys: list[domain.MessageKey]
) -> domain.Message:
    """Applies the unexpired reports parked for `keys` to `message` (which now holds those ids)."""
    for parked in await store.take_parked(conn, tenant_id, keys):
        if parked.expired:
            _PARKED["expired"] += 1
            continue
        outcome = await store.apply_status(conn, tenant_id, parked.report)
        _PARKED["applied"] += 1
        if outcome is not None:
            message = (await _noted(conn, tenant_id, outcome)).message or message
    return message


def _ids_to_attach(
    message: domain.Message, keys: list[domain.MessageKey], holders: list[domain.Message]
) -> list[domain.MessageKey]:
    for holder in holders:
        if holder.id != message.id:
            raise AlreadyExists("message", "another message has this provider id", str(holder.id))
    missing = []
    for key in keys:
        current = message.whatsapp_message_id if key.kind is domain.KeyKind.WHATSAPP else message.genesys_message_id
        if current is not None and current != key.value:
            raise AlreadyExists(
                "message", f"the message has a different {key.kind} message id already", str(message.id)
            )
        if current is None:
            missing.append(key)
    return missing


async def _conversation_refuses(
    source: Connection | Database, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> NoReturn:
    conversation = await conversation_store.get(source, tenant_id, conversation_id)
    if conversation is None:
        raise NotFound("conversation", str(conversation_id))
    check_open(conversation)
    raise Aborted("the conversation changed meanwhile; retry")


def _not_retryable(message: domain.Message, max_retries: int) -> FailedPrecondition:
    if message.status is not domain.Status.FAILED:
        return FailedPrecondition("MESSAGE_NOT_FAILED", f"only a FAILED message can be retried; it is {message.status}")
    return FailedPrecondition("RETRY_LIMIT_REACHED", f"the message was retried {max_retries} times already")


def _position(position: list[object] | None, field: str = "page_token") -> tuple[dt.datetime, uuid.UUID] | None:
    if position is None:
        return None
    try:
        at, ident = position
        created = dt.datetime.fromisoformat(str(at))
        if created.tzinfo is None:
            raise ValueError("naive")
        return created, uuid.UUID(str(ident))
    except (TypeError, ValueError):
        raise InvalidArgument(field, "is malformed") from None


def _found(message: domain.Message | None, key: str) -> domain.Message:
    if message is None:
        raise NotFound("message", key)
    return message


def _status_event(outcome: domain.StatusOutcome) -> Event:
    assert outcome.message is not None
    return _message_event(EventType.MESSAGE_STATUS_CHANGED, outcome.message)


def recorded_event(new: domain.NewMessage, message_id: uuid.UUID) -> Event:
    """MESSAGE_RECORDED for `new`, recorded as `message_id` (the INSERT stores `new.status` as given)."""
    return Event(
        type=EventType.MESSAGE_RECORDED,
        conversation_id=new.conversation_id,
        message_id=message_id,
        message_status=new.status.value,
        direction=new.direction.value,
    )


def _message_event(event_type: EventType, message: domain.Message) -> Event:
    return Event(
        type=event_type,
        conversation_id=message.conversation_id,
        message_id=message.id,
        message_status=message.status.value,
        direction=message.direction.value,
        at=message.created_at,
        delivered_at=message.delivered_at,
        read_at=message.read_at,
        error_code=message.error_code or "",
    )


def _activity_time(new: domain.NewMessage) -> dt.datetime:
    """When a new message happened for its conversation: its sending time, never in the future."""
    return min(new.sent_at or _now(), _now())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
