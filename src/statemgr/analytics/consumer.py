"""The rollup consumer: folds each tenant's event log into the analytics tables, a batch at a time.

It is one of the leader's duties (statemgr.events.runtime): `run(conn)` on the leader's connection, as statemgr_relay,
which sees every tenant's events. It needs nothing else from where it runs.

- Order and completeness: each tenant has its own cursor (analytics_cursors) and is read like Subscribe reads it, in
  (tx_id, seq) order and only below the snapshot's horizon, so nothing committed is skipped when transactions commit
  out of order (statemgr/events/cursor.py).
- Exactly once: a batch's rollups, state and the cursor past it are written by one statement that does nothing
  unless the cursor is still where the batch began. A crash before it leaves the batch to be read again; a crash
  after it finds the cursor past the batch; a second leader's stale batch is refused.
- Off the hot path: writers only add a few fields to their event payloads; this runs in the background. It folds
  when the event listener says events were committed (and at least every IDLE_SECONDS, for a notification lost),
  then waits STATEMGR_ANALYTICS_POLL_SECONDS before the next round, so that under load one round folds the many
  commits of that interval in one batch per tenant: its fixed cost (about eight statements, and a rewrite of each
  rollup row the batch touches: a few per hour per agent, however many events) is shared by all of them.
- Its own state is pruned (`prune_state`) between rounds, in bounded steps, in the same task as the folding, so a
  step never runs between a batch's reads and its write: outbound messages recorded longer than the message bound
  (STATEMGR_ANALYTICS_MESSAGE_STATE_DAYS) and customer numbers unused for longer than the longest period a call
  may ask for (CUSTOMER_BOUND), both measured on the tenant's latest folded event time, not the clock.
- Pruned before folded: if the log was pruned past a tenant's cursor (the consumer was stopped for longer than the
  event retention), the cursor jumps to the floor, the gap is logged and counted; the figures then miss those events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Iterable
from typing import Any

import prometheus_client
import structlog
from psycopg.types.json import Jsonb
from pyroaring import BitMap

from statemgr.analytics import histogram, periods
from statemgr.analytics.fold import (
    CONVERSATION_EVENTS,
    COUNTS,
    HISTOGRAMS,
    SEEN_EVERY,
    Conversation,
    Fold,
    Key,
    Message,
    Rollup,
)
from statemgr.events.cursor import Position
from statemgr.store import queries
from statemgr.store.db import Connection

Q = queries.load("analytics")
_log = structlog.get_logger("statemgr.analytics.consumer")

FOLDED = prometheus_client.Counter("statemgr_analytics_events_folded_total", "Events folded into the rollups")
GAPS = prometheus_client.Counter(
    "statemgr_analytics_gaps_total", "Times a tenant's log was pruned past the rollup cursor before being folded"
)
PRUNED = prometheus_client.Counter(
    "statemgr_analytics_state_pruned_total", "Rows of the rollup consumer's own state pruned", ["table"]
)
BATCH_SECONDS = prometheus_client.Histogram(
    "statemgr_analytics_batch_seconds", "Time to fold one batch of events into the rollups"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Cursor:
    tenant_id: uuid.UUID
    position: Position
    next_customer: int


IDLE_SECONDS = 5.0
# A customer's number outlives any period a call may ask for (and the lag of its last use, SEEN_EVERY): a customer
# who comes back after it gets a new number, which no period can hold together with the old one.
CUSTOMER_BOUND = periods.MAX_PERIOD + 2 * SEEN_EVERY


@dataclasses.dataclass(frozen=True, slots=True)
class Pruning:
    """How the consumer prunes its own state: the message bound, how often, rows per table per step, and the
    customer bound (not a setting: below CUSTOMER_BOUND, distinct customers over a long period could count one
    customer twice; the tests lower it to have something to prune)."""

    messages: dt.timedelta = dt.timedelta(days=60)
    interval_seconds: float = 300.0
    batch: int = 5000
    customers: dt.timedelta = CUSTOMER_BOUND


@dataclasses.dataclass(frozen=True, slots=True)
class Pruned:
    messages: int
    customers: int


class RollupConsumer:
    def __init__(
        self,
        poll_seconds: float = 0.5,
        batch_size: int = 1000,
        idle_seconds: float = IDLE_SECONDS,
        pruning: Pruning | None = None,
    ) -> None:
        self._poll = poll_seconds
        self._batch = batch_size
        self._idle = idle_seconds
        self._pruning = pruning or Pruning()
        self._prune_due = 0.0
        self._wake = asyncio.Event()

    def wake(self, tenant: str | None = None) -> None:
        """Events were committed (the event listener's callback): the next round starts after the poll interval."""
        self._wake.set()

    async def run(self, conn: Connection) -> None:
        """Folds every tenant's new events until cancelled or until `conn` fails."""
        while True:
            self._wake.clear()
            if await self.step(conn):
                continue
            await self._prune_when_due(conn)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle)
            await asyncio.sleep(self._poll)

    async def step(self, conn: Connection) -> bool:
        """One batch for each tenant with new events; True when some tenant probably has more waiting."""
        more = False
        for cursor in await _pending(conn):
            more |= await self.fold_batch(conn, cursor) >= self._batch
        return more

    async def _prune_when_due(self, conn: Connection) -> None:
        """Prunes in bounded steps while more is waiting and no commit asks for folding; again after the interval."""
        if time.monotonic() < self._prune_due:
            return
        pruning = self._pruning
        while True:
            pruned = await prune_state(conn, pruning.messages, pruning.customers, pruning.batch)
            if max(pruned.messages, pruned.customers) < pruning.batch or self._wake.is_set():
                break
        self._prune_due = time.monotonic() + pruning.interval_seconds

    async def fold_batch(self, conn: Connection, cursor: Cursor) -> int:
        """Folds the tenant's next batch; returns how many events it held."""
        started = time.perf_counter()
        params = {"tenant_id": cursor.tenant_id, "limit": self._batch}
        position = {"after_tx": str(cursor.position.tx_id), "after_seq": cursor.position.seq}
        events = await (await conn.execute(Q["read_events"], {**params, **position})).fetchall()
        if not events:
            return 0
        fold = await _load(conn, cursor, events)
        for event in events:
            fold.apply(event["type"], event["conversation_id"], event["payload"])
        last = Position(int(events[-1]["tx_id"]), int(events[-1]["seq"]))
        written = await _write(conn, cursor, last, fold)
        if written:
            FOLDED.inc(len(events))
            BATCH_SECONDS.observe(time.perf_counter() - started)
        return len(events)


async def reset(conn: Connection, tenant_id: uuid.UUID) -> None:
    """Forgets the tenant's rollups and cursor: the consumer folds its whole retained log again (a replay)."""
    await conn.execute(Q["reset_tenant"], {"tenant_id": tenant_id})


async def prune_state(
    conn: Connection, message_bound: dt.timedelta, customer_bound: dt.timedelta, limit: int
) -> Pruned:
    """One bounded step: up to `limit` rows of each state table older than its bound, every tenant at once.

    Only for the consumer's own task (or with no consumer running): a step between a batch's reads and its write
    would let the write put back what the step removed, which is harmless, never the reverse."""
    params = {"message_bound": message_bound, "customer_bound": customer_bound, "limit": limit}
    row = await (await conn.execute(Q["prune_state"], params)).fetchone()
    pruned = Pruned(int(row["messages"]), int(row["customers"])) if row else Pruned(0, 0)
    if pruned.messages or pruned.customers:
        PRUNED.labels("analytics_messages").inc(pruned.messages)
        PRUNED.labels("analytics_customer_numbers").inc(pruned.customers)
        _log.info("analytics_state_pruned", messages=pruned.messages, customers=pruned.customers)
    return pruned


async def _pending(conn: Connection) -> list[Cursor]:
    rows = await (await conn.execute(Q["pending_tenants"])).fetchall()
    cursors = []
    for row in rows:
        position = Position(int(row["tx_id"]), int(row["seq"]))
        if not row["has_cursor"]:
            await conn.execute(Q["add_cursor"], {"tenant_id": row["tenant_id"]})
        if row["floor_tx"] is not None and position < (floor := Position(int(row["floor_tx"]), row["floor_seq"])):
            position = await _skip_gap(conn, row["tenant_id"], position, floor)
        cursors.append(Cursor(row["tenant_id"], position, int(row["next_customer"])))
    return cursors


async def _skip_gap(conn: Connection, tenant_id: uuid.UUID, position: Position, floor: Position) -> Position:
    if position != Position(0, 0):
        GAPS.inc()
        _log.warning("analytics_gap", tenant_id=str(tenant_id), note="events were pruned before they were folded")
    params = {"tenant_id": tenant_id, "to_tx": str(floor.tx_id), "to_seq": floor.seq}
    await conn.execute(Q["skip_to"], params)
    return floor


async def _load(conn: Connection, cursor: Cursor, events: list[dict[str, Any]]) -> Fold:
    """The state the batch's events need: their conversations, outbound messages and customers."""
    tenant = {"tenant_id": cursor.tenant_id}
    conversation_ids = list(
        {e["conversation_id"] for e in events if e["conversation_id"] is not None and e["type"] in CONVERSATION_EVENTS}
    )
    message_ids = list({_payload_id(e, "message_id") for e in events if e["type"].startswith("message.")} - {None})
    rows = await (await conn.execute(Q["load_conversations"], {**tenant, "ids": conversation_ids})).fetchall()
    conversations: dict[uuid.UUID, Conversation | None] = {r["conversation_id"]: _conversation(r) for r in rows}
    rows = await (await conn.execute(Q["load_messages"], {**tenant, "ids": message_ids})).fetchall()
    messages: dict[uuid.UUID, Message | None] = {
        r["message_id"]: Message(r["message_id"], r["recorded_at"], r["agent_id"], r["facts"]) for r in rows
    }
    customer_ids = {_payload_id(e, "customer_id") for e in events} | {
        c.customer_id for c in conversations.values() if c is not None
    }
    ids = [c for c in customer_ids if c is not None]
    rows = await (await conn.execute(Q["load_customer_numbers"], {**tenant, "ids": ids})).fetchall()
    numbers = {r["customer_id"]: r["number"] for r in rows}
    last_seen = {r["customer_id"]: r["last_seen"] for r in rows}
    return Fold(conversations, messages, numbers, cursor.next_customer, last_seen)


def _payload_id(event: dict[str, Any], name: str) -> uuid.UUID | None:
    value = event["payload"].get(name)
    return uuid.UUID(value) if value else None


def _conversation(row: dict[str, Any]) -> Conversation:
    names = [f.name for f in dataclasses.fields(Conversation)]
    return Conversation(**{name: row[name] for name in names})


async def _write(conn: Connection, cursor: Cursor, last: Position, fold: Fold) -> bool:
    tenant_id = cursor.tenant_id
    rollups = await _merged_rollups(conn, tenant_id, fold.rollups)
    sets = await _merged_sets(conn, tenant_id, fold)
    params = {
        "tenant_id": tenant_id,
        "from_tx": str(cursor.position.tx_id),
        "from_seq": cursor.position.seq,
        "to_tx": str(last.tx_id),
        "to_seq": last.seq,
        "next_customer": fold.next_customer,
        "rollups": Jsonb(rollups),
        "error_codes": Jsonb(
            [{"grain": g, "bucket": b.isoformat(), "error_code": c, "failed": n} for (g, b, c), n in _nonzero(fold)]
        ),
        "customer_sets": Jsonb(sets),
        "numbers": Jsonb([_number_row(fold, c) for c in fold.seen]),
        "folded_at": fold.latest,
        "conversations": Jsonb([_conversation_row(tenant_id, c) for c in fold.conversations.values() if c is not None]),
        "closed": list(fold.closed),
        "messages": Jsonb([_message_row(tenant_id, m) for m in _moved(fold)]),
        "open": Jsonb([{"state": s, "conversations": n} for s, n in fold.open_states.items() if n]),
        "recent": Jsonb([{"second": s.isoformat(), "messages": n} for s, n in fold.recent.items()]),
    }
    row = await (await conn.execute(Q["write_batch"], params)).fetchone()
    return bool(row and row["moved"])


def _number_row(fold: Fold, customer_id: uuid.UUID) -> dict[str, Any]:
    number, last_seen = fold.customer_numbers[customer_id], fold.last_seen[customer_id]
    return {"customer_id": str(customer_id), "number": number, "last_seen": last_seen.isoformat()}


def _moved(fold: Fold) -> Iterable[Message]:
    """The messages to write: those the batch recorded or whose funnel facts it moved (a duplicate report does not)."""
    return (m for i, m in fold.messages.items() if m is not None and i in fold.moved)


def _nonzero(fold: Fold) -> Iterable[tuple[tuple[str, dt.datetime, str], int]]:
    return ((key, n) for key, n in fold.error_codes.items() if n)


async def _merged_rollups(conn: Connection, tenant_id: uuid.UUID, changes: dict[Key, Rollup]) -> list[dict[str, Any]]:
    """The changed rollup rows, whole: what is stored plus the batch's changes."""
    keys = list(changes)
    params = {
        "tenant_id": tenant_id,
        "grains": [k[0] for k in keys],
        "buckets": [k[1] for k in keys],
        "agents": [k[2] for k in keys],
    }
    stored = {
        (r["grain"], r["bucket"], r["agent_id"]): r
        for r in await (await conn.execute(Q["load_rollups"], params)).fetchall()
    }
    return [_rollup_row(tenant_id, key, stored.get(key), change) for key, change in changes.items()]


def _rollup_row(tenant_id: uuid.UUID, key: Key, stored: dict[str, Any] | None, change: Rollup) -> dict[str, Any]:
    grain, bucket, agent = key
    row: dict[str, Any] = {"tenant_id": str(tenant_id), "grain": grain, "bucket": bucket.isoformat()}
    row["agent_id"] = str(agent)
    for name in COUNTS:
        row[name] = (stored[name] if stored else 0) + change.counts.get(name, 0)
    for name in HISTOGRAMS:
        blob = bytes(stored[name]) if stored else b""
        changed = change.histograms.get(name)
        if changed:  # decoded and encoded again only when the batch changed it (numpy work, per row and histogram)
            counts = histogram.decode(blob)
            counts.update(changed)
            blob = histogram.encode(counts)
        row[name] = "\\x" + blob.hex()
    return row


async def _merged_sets(conn: Connection, tenant_id: uuid.UUID, fold: Fold) -> list[dict[str, Any]]:
    keys = list(set(fold.active) | set(fold.created))
    if not keys:
        return []
    params = {"tenant_id": tenant_id, "grains": [k[0] for k in keys], "buckets": [k[1] for k in keys]}
    stored = {
        (r["grain"], r["bucket"]): r for r in await (await conn.execute(Q["load_customer_sets"], params)).fetchall()
    }
    rows = []
    for key in keys:
        row = stored.get(key)
        active = BitMap.deserialize(bytes(row["active"])) if row else BitMap()
        created = BitMap.deserialize(bytes(row["created"])) if row else BitMap()
        size = len(active) + len(created)
        active.update(fold.active.get(key, ()))
        created.update(fold.created.get(key, ()))
        if row is None or len(active) + len(created) > size:  # customers already in the bucket change nothing
            rows.append(
                {"grain": key[0], "bucket": key[1].isoformat(), "active": _b64(active), "created": _b64(created)}
            )
    return rows


def _b64(bitmap: BitMap) -> str:
    return base64.b64encode(bitmap.serialize()).decode()


def _conversation_row(tenant_id: uuid.UUID, conversation: Conversation) -> dict[str, Any]:
    row: dict[str, Any] = {"tenant_id": str(tenant_id)}
    for field in dataclasses.fields(Conversation):
        value = getattr(conversation, field.name)
        row[field.name] = value.isoformat() if isinstance(value, dt.datetime) else _json(value)
    return row


def _message_row(tenant_id: uuid.UUID, message: Message) -> dict[str, Any]:
    return {
        "tenant_id": str(tenant_id),
        "message_id": str(message.message_id),
        "recorded_at": message.recorded_at.isoformat(),
        "agent_id": _json(message.agent_id),
        "facts": message.facts,
    }


def _json(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value
