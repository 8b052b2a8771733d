"""The relay: publishes the outbox to RabbitMQ, oldest first, marking each event published only after its confirm.

It runs only in the leading process (statemgr.events.leader), on the leader's connection as statemgr_relay.

- Order: batches are read in seq order and sent on one channel. A conversation's events get their seq while the
  writer holds the conversation's row lock, so they reach the exchange in the order they were committed.
- At least once: an event is marked published after its Basic.Ack. A relay that dies (or loses RabbitMQ) between
  sending and confirming leaves the event unmarked, and the next round (or the next leader) sends it again with the
  same message_id; consumers deduplicate on it.
- RabbitMQ down: nothing is marked, events wait in PostgreSQL, and the relay retries every couple of seconds; when
  the broker is back the backlog drains in order.
- Unroutable (returned because of the mandatory flag: no queue bound for the routing key): marked unroutable_at,
  counted in statemgr_events_unroutable_total, and set aside so they stall nothing behind them. A retry pass, run
  whenever the outbox is drained, sends those whose retry is due again: after STATEMGR_EVENT_UNROUTABLE_RETRY_SECONDS,
  doubling per attempt up to STATEMGR_EVENT_UNROUTABLE_RETRY_MAX_SECONDS, until a queue takes them or retention
  prunes them. `statemgr events retry-unroutable` makes them all due at once (after binding a queue); the gauge
  statemgr_events_unroutable_waiting says how many wait. A retried event arrives after later events of its
  conversation that were routable at the time.
- A Basic.Nack (a broker-side failure, rare) leaves the event unmarked; it is retried in the next round, so it can
  arrive after later events of its conversation.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from statemgr.events import metrics, wire
from statemgr.events.publisher import AmqpPublisher, Outcome, Outgoing, PublisherError
from statemgr.store import events as store
from statemgr.store.db import Connection
from statemgr.store.events import StoredEvent

_log = structlog.get_logger("statemgr.events.relay")

_RETRY_FIRST = 0.25
_RETRY_MAX = 2.0
_BACKLOG_EVERY = 2.0
DEFAULT_BACKOFF = store.Backoff(first_seconds=5.0, max_seconds=300.0)


class Relay:
    def __init__(
        self,
        publisher: AmqpPublisher,
        batch_size: int,
        poll_seconds: float,
        linger_seconds: float = 0.0,
        backoff: store.Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll = poll_seconds
        self._linger = linger_seconds
        self._backoff = backoff
        self._wake = asyncio.Event()
        self._retry = _RETRY_FIRST
        self._backlog_due = 0.0

    def wake(self, tenant: str | None = None) -> None:
        """New events were committed (for `tenant`); the relay reads the outbox again now."""
        self._wake.set()

    async def run(self, conn: Connection) -> None:
        """Publishes until cancelled or until `conn` fails (leadership lost, as the lock went with it)."""
        try:
            while True:
                await self._report_backlog(conn)
                if await self._round(conn):
                    continue
                await self._retry_unroutable(conn)
                await self._idle()
                # Woken by one commit, wait for the ones right behind it: a round costs about the same for one
                # event as for fifty (a read, a publish and its confirm, an update), so this buys CPU with latency.
                await asyncio.sleep(self._linger)
        finally:
            metrics.BACKLOG.set(0)
            metrics.PUBLISH_LAG.set(0)
            metrics.UNROUTABLE_WAITING.set(0)
            await self._publisher.close()

    async def _round(self, conn: Connection) -> bool:
        """Publishes one batch; True when a full batch went out and more are probably waiting."""
        self._wake.clear()
        batch = await store.unpublished(conn, self._batch_size)
        if not batch:
            return False
        outcome = await self._publish(batch)
        await store.mark_published(conn, outcome.confirmed)
        await store.mark_unroutable(conn, outcome.returned, self._backoff)
        _count(outcome)
        if outcome.failed:
            await self._back_off(f"{len(outcome.failed)} events not confirmed")
            return False
        self._retry = _RETRY_FIRST
        return len(batch) == self._batch_size

    async def _retry_unroutable(self, conn: Connection) -> None:
        """Sends the unroutable events whose retry is due once more; those a queue now takes are published."""
        due = await store.unroutable_due(conn, self._batch_size)
        if not due:
            return
        outcome = await self._publish(due)
        await store.mark_published(conn, outcome.confirmed)
        await store.mark_unroutable(conn, outcome.returned, self._backoff)
        metrics.PUBLISHED.inc(len(outcome.confirmed))
        metrics.UNROUTABLE_DELIVERED.inc(len(outcome.confirmed))
        if outcome.failed:  # RabbitMQ unreachable: they stay due; wait as the main pass does
            await self._back_off(f"{len(outcome.failed)} unroutable events not confirmed")
        if outcome.confirmed:
            _log.info("unroutable_delivered", events=len(outcome.confirmed), still_unroutable=len(outcome.returned))
            self._backlog_due = 0.0  # report the smaller wait at once

    async def _publish(self, batch: list[StoredEvent]) -> Outcome:
        messages = [_outgoing(event) for event in batch]
        try:
            if not self._publisher.connected:
                await self._publisher.connect()
            return await self._publisher.publish(messages)
        except (PublisherError, TimeoutError) as exc:
            _log.warning("amqp_unavailable", error=str(exc), waiting=len(batch))
            return Outcome(failed=[m.key for m in messages])

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), self._poll)
        except TimeoutError:
            pass

    async def _back_off(self, why: str) -> None:
        _log.info("relay_retrying", reason=why, retry_seconds=self._retry)
        await asyncio.sleep(self._retry)
        self._retry = min(_RETRY_MAX, self._retry * 2)

    async def _report_backlog(self, conn: Connection) -> None:
        now = time.monotonic()
        if now < self._backlog_due:
            return
        self._backlog_due = now + _BACKLOG_EVERY
        backlog = await store.backlog(conn)
        metrics.BACKLOG.set(backlog.events)
        metrics.PUBLISH_LAG.set(backlog.oldest_seconds)
        metrics.UNROUTABLE_WAITING.set(backlog.unroutable)


def _outgoing(event: StoredEvent) -> Outgoing:
    return Outgoing(
        key=event.position.seq,
        message_id=str(event.id),
        routing_key=wire.routing_key(event.tenant_id, event.type),
        type=wire.amqp_type(event.type),
        body=wire.to_bytes(event),
        timestamp=int(event.created_at.timestamp()),
    )


def _count(outcome: Outcome) -> None:
    metrics.PUBLISHED.inc(len(outcome.confirmed))
    metrics.UNROUTABLE.inc(len(outcome.returned))
    metrics.PUBLISH_FAILURES.inc(len(outcome.failed))
