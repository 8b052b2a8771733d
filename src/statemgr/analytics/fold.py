"""Folding events into rollups: the rules of every figure (docs/analytics.md), with no I/O.

A Fold starts from the consumer's state of the conversations and messages a batch of events touches, applies the
events in log order, and leaves behind the new state and the changes to every bucket. Times come from the events'
payloads (the rows' own times, written by the same statement), never from the clock, so a replay folds the same.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import uuid
from collections.abc import Iterable
from typing import Any

from statemgr.analytics import histogram

NIL = uuid.UUID(int=0)  # the agent_id of a tenant's own rows
WINDOW = dt.timedelta(hours=24)
RECENT = dt.timedelta(minutes=5)  # the live view's "messages per second" rows are kept this long
SEEN_EVERY = dt.timedelta(days=1)  # a customer number's last use is written again once it is this much older

# Counted columns of analytics_rollups (durations: *_n, *_us and a histogram *_h).
COUNTS = (
    "opened", "closed", "closed_inbound", "closed_outbound", "duration_us", "first_response_n", "first_response_us",
    "response_n", "response_us", "inbound", "outbound", "transfers_in", "transfers_out", "assigned", "late_replies",
    "new_customers", "delivered", "read", "failed", "to_delivered_n", "to_delivered_us", "to_read_n", "to_read_us",
)  # fmt: skip
HISTOGRAMS = ("duration_h", "first_response_h", "response_h", "to_delivered_h", "to_read_h")

Key = tuple[str, dt.datetime, uuid.UUID]  # grain, bucket start, agent (NIL for the tenant)


def buckets(at: dt.datetime) -> tuple[tuple[str, dt.datetime], ...]:
    """The hour, the UTC day and the UTC week (from Monday) `at` falls in."""
    return _hour_buckets(at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0))


@functools.lru_cache(maxsize=4096)
def _hour_buckets(hour: dt.datetime) -> tuple[tuple[str, dt.datetime], ...]:
    # Every event asks for its buckets several times (tenant, agent, funnel rows), and a batch spans few hours.
    day = hour.replace(hour=0)
    return (("h", hour), ("d", day), ("w", day - dt.timedelta(days=day.weekday())))


def micros(delta: dt.timedelta) -> int:
    return max(0, (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


@dataclasses.dataclass
class Rollup:
    """One analytics_rollups row (as loaded, then changed by the fold)."""

    counts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    histograms: dict[str, collections.Counter[int]] = dataclasses.field(default_factory=dict)

    def add(self, name: str, value: int = 1) -> None:
        self.counts[name] += value

    def sample(self, name: str, microseconds: int, sign: int = 1) -> None:
        """A duration: count, sum and histogram bin (`sign` -1 takes one back)."""
        self.counts[f"{name}_n"] += sign
        self.counts[f"{name}_us"] += sign * microseconds
        self.histograms.setdefault(f"{name}_h", collections.Counter())[histogram.bin_of(microseconds)] += sign


@dataclasses.dataclass
class Conversation:
    """The consumer's view of an open conversation (analytics_conversations)."""

    conversation_id: uuid.UUID
    customer_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    state: str
    opened_at: dt.datetime
    state_since: dt.datetime
    first_inbound_at: dt.datetime | None = None
    answered: bool = False
    waiting_since: dt.datetime | None = None
    last_inbound_at: dt.datetime | None = None
    inbound: int = 0
    outbound: int = 0


@dataclasses.dataclass
class Message:
    """The consumer's view of an outbound message (analytics_messages): what it counts for in the funnel."""

    message_id: uuid.UUID
    recorded_at: dt.datetime
    agent_id: uuid.UUID | None
    facts: dict[str, Any]


@dataclasses.dataclass
class Fold:
    """The state a batch needs, loaded by the consumer; `apply` each event in log order."""

    conversations: dict[uuid.UUID, Conversation | None]
    messages: dict[uuid.UUID, Message | None]
    customer_numbers: dict[uuid.UUID, int]
    next_customer: int
    last_seen: dict[uuid.UUID, dt.datetime] = dataclasses.field(default_factory=dict)  # as loaded, then as written
    rollups: dict[Key, Rollup] = dataclasses.field(default_factory=dict)
    error_codes: collections.Counter[tuple[str, dt.datetime, str]] = dataclasses.field(
        default_factory=collections.Counter
    )
    active: dict[tuple[str, dt.datetime], set[int]] = dataclasses.field(default_factory=dict)
    created: dict[tuple[str, dt.datetime], set[int]] = dataclasses.field(default_factory=dict)
    open_states: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    recent: collections.Counter[dt.datetime] = dataclasses.field(default_factory=collections.Counter)
    seen: set[uuid.UUID] = dataclasses.field(default_factory=set)  # customers whose number or last use to write
    latest: dt.datetime | None = None  # the latest event time folded
    closed: set[uuid.UUID] = dataclasses.field(default_factory=set)
    moved: set[uuid.UUID] = dataclasses.field(default_factory=set)  # messages whose funnel facts changed
    now: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def apply(self, event_type: str, conversation_id: uuid.UUID | None, payload: dict[str, str]) -> None:
        handler, at = _HANDLERS.get(event_type), _time(payload.get("at"))
        if handler is not None and at is not None:
            handler(self, conversation_id, payload, at)
            self.latest = at if self.latest is None else max(self.latest, at)

    # --- buckets -------------------------------------------------------------------------------------------------

    def rows(self, at: dt.datetime, agent_id: uuid.UUID | None = None) -> Iterable[Rollup]:
        """The rows an event at `at` counts in: the tenant's hour and day, and the agent's when given."""
        for grain, bucket in buckets(at):
            yield self._row((grain, bucket, NIL))
            if agent_id is not None:
                yield self._row((grain, bucket, agent_id))

    def _row(self, key: Key) -> Rollup:
        row = self.rollups.get(key)
        if row is None:
            row = self.rollups[key] = Rollup()
        return row

    def number(self, customer_id: uuid.UUID, at: dt.datetime) -> int:
        """The customer's dense number (a new one if unknown, or pruned), noting its use at `at`."""
        found = self.customer_numbers.get(customer_id)
        if found is None:
            found = self.customer_numbers[customer_id] = self.next_customer
            self.next_customer += 1
        last = self.last_seen.get(customer_id)
        if last is None or at >= last + SEEN_EVERY:
            self.last_seen[customer_id] = at
            self.seen.add(customer_id)
        return found

    def _mark(self, sets: dict[tuple[str, dt.datetime], set[int]], at: dt.datetime, number: int) -> None:
        for key in buckets(at):
            sets.setdefault(key, set()).add(number)

    # --- conversations -------------------------------------------------------------------------------------------

    def created_conversation(self, conversation_id: uuid.UUID | None, payload: dict[str, str], at: dt.datetime) -> None:
        if conversation_id is None:
            return
        agent = _uuid(payload.get("agent_id"))
        state = payload.get("conversation_state", "active")
        self.conversations[conversation_id] = Conversation(
            conversation_id, _uuid(payload.get("customer_id")), agent, state, opened_at=at, state_since=at
        )
        self.open_states[state] += 1
        for row in self.rows(at):
            row.add("opened")
        if agent is not None:
            for grain, bucket in buckets(at):
                self._row((grain, bucket, agent)).add("assigned")

    def changed_state(self, conversation_id: uuid.UUID | None, payload: dict[str, str], at: dt.datetime) -> None:
        conversation = self._conversation(conversation_id)
        state = payload.get("conversation_state", "")
        if conversation is None or not state:
            return
        self.open_states[conversation.state] -= 1
        self.open_states[state] += 1
        conversation.state, conversation.state_since = state, at

    def transferred(self, conversation_id: uuid.UUID | None, payload: dict[str, str], at: dt.datetime) -> None:
        conversation = self._conversation(conversation_id)
        agent = _uuid(payload.get("agent_id"))
        if conversation is None or agent is None or agent == conversation.agent_id:
            return
        for grain, bucket in buckets(at):
            if conversation.agent_id is not None:
                self._row((grain, bucket, conversation.agent_id)).add("transfers_out")
            target = self._row((grain, bucket, agent))
            target.add("transfers_in")
            target.add("assigned")
        conversation.agent_id = agent

    def closed_conversation(self, conversation_id: uuid.UUID | None, payload: dict[str, str], at: dt.datetime) -> None:
        conversation = self._conversation(conversation_id)
        if conversation is None or conversation_id is None:
            return
        self.open_states[conversation.state] -= 1
        duration = micros(at - conversation.opened_at)
        for row in self.rows(at, conversation.agent_id):
            row.add("closed")
            row.sample("duration", duration)
            row.add("closed_inbound", conversation.inbound)
            row.add("closed_outbound", conversation.outbound)
        self.conversations[conversation_id] = None
        self.closed.add(conversation_id)

    def _conversation(self, conversation_id: uuid.UUID | None) -> Conversation | None:
        return None if conversation_id is None else self.conversations.get(conversation_id)

    # --- messages ------------------------------------------------------------------------------------------------

    def recorded(self, conversation_id: uuid.UUID | None, payload: dict[str, str], at: dt.datetime) -> None:
        conversation = self._conversation(conversation_id)
        if at >= self.now - RECENT:
            self.recent[at.replace(microsecond=0)] += 1
        if payload.get("direction") == "inbound":
            self._inbound(conversation, at)
        elif payload.get("direction") == "outbound":
            self._outbound(conversation, payload, at)

    def _inbound(self, conversation: Conversation | None, at: dt.datetime) -> None:
        for row in self.rows(at):
            row.add("inbound")
        if conversation is None:
            return
        conversation.inbound += 1
        conversation.first_inbound_at = conversation.first_inbound_at or at
        conversation.waiting_since = conversation.waiting_since or at
        conversation.last_inbound_at = at
        if conversation.customer_id is not None:
            self._mark(self.active, at, self.number(conversation.customer_id, at))

    def _outbound(self, conversation: Conversation | None, payload: dict[str, str], at: dt.datetime) -> None:
        agent = conversation.agent_id if conversation else None
        rows = list(self.rows(at, agent))
        for row in rows:
            row.add("outbound")
        if conversation is not None:
            self._reply(conversation, rows, at)
        message_id = _uuid(payload.get("message_id"))
        if message_id is not None:
            message = Message(message_id, at, agent, facts={})
            self.messages[message_id] = message
            self._move_funnel(message, funnel_facts(payload, at))

    def _reply(self, conversation: Conversation, rows: list[Rollup], at: dt.datetime) -> None:
        conversation.outbound += 1
        if conversation.last_inbound_at is not None and at > conversation.last_inbound_at + WINDOW:
            for row in rows:
                row.add("late_replies")
        if conversation.first_inbound_at is not None and not conversation.answered:
            conversation.answered = True
            for row in rows:
                row.sample("first_response", micros(at - conversation.first_inbound_at))
        if conversation.waiting_since is not None:
            for row in rows:
                row.sample("response", micros(at - conversation.waiting_since))
            conversation.waiting_since = None

    def status_changed(self, conversation_id: uuid.UUID | None, payload: dict[str, str], at: dt.datetime) -> None:
        message_id = _uuid(payload.get("message_id"))
        message = self.messages.get(message_id) if message_id is not None else None
        if message is not None:
            self._move_funnel(message, funnel_facts(payload, message.recorded_at))

    def _move_funnel(self, message: Message, facts: dict[str, Any]) -> None:
        """Takes back what the message counted for, then counts what it counts for now."""
        if facts == message.facts:
            return
        self._count_funnel(message, message.facts, -1)
        self._count_funnel(message, facts, 1)
        message.facts = facts
        self.moved.add(message.message_id)

    def _count_funnel(self, message: Message, facts: dict[str, Any], sign: int) -> None:
        if not facts:
            return
        for row in self.rows(message.recorded_at, message.agent_id):
            for name in ("delivered", "read", "failed"):
                if facts.get(name):
                    row.add(name, sign)
            for name in ("to_delivered", "to_read"):
                if facts.get(name) is not None:
                    row.sample(name, facts[name], sign)
        if facts.get("failed"):
            for grain, bucket in buckets(message.recorded_at):
                self.error_codes[(grain, bucket, facts.get("error_code") or "")] += sign

    # --- customers -----------------------------------------------------------------------------------------------

    def customer_created(self, conversation_id: uuid.UUID | None, payload: dict[str, str], at: dt.datetime) -> None:
        customer_id = _uuid(payload.get("customer_id"))
        if customer_id is None:
            return
        self._mark(self.created, at, self.number(customer_id, at))
        for row in self.rows(at):
            row.add("new_customers")


def funnel_facts(payload: dict[str, str], recorded_at: dt.datetime) -> dict[str, Any]:
    """What an outbound message counts for, from the message's status and times in the event."""
    status = payload.get("message_status", "")
    delivered_at, read_at = _time(payload.get("delivered_at")), _time(payload.get("read_at"))
    facts: dict[str, Any] = {
        "delivered": delivered_at is not None or read_at is not None or status in ("delivered", "read"),
        "read": read_at is not None or status == "read",
        "failed": status == "failed",
        "to_delivered": None if delivered_at is None else micros(delivered_at - recorded_at),
        "to_read": None if read_at is None else micros(read_at - recorded_at),
    }
    if facts["failed"]:
        facts["error_code"] = payload.get("error_code", "")
    return facts


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


# The events whose folding reads or changes the state of their conversation: the consumer loads (and writes back)
# only those conversations; a status report, the bulk of a log, touches only its message.
CONVERSATION_EVENTS = frozenset(
    {
        "conversation.created",
        "conversation.state_changed",
        "conversation.transferred",
        "conversation.closed",
        "message.recorded",
    }
)

_HANDLERS = {
    "conversation.created": Fold.created_conversation,
    "conversation.state_changed": Fold.changed_state,
    "conversation.transferred": Fold.transferred,
    "conversation.closed": Fold.closed_conversation,
    "message.recorded": Fold.recorded,
    "message.status_changed": Fold.status_changed,
    "message.retried": Fold.status_changed,
    "customer.created": Fold.customer_created,
}
