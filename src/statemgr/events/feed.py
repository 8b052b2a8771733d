"""One tenant's live feed: a single reader of the tenant's log that fans events out to every subscriber of it.

However many subscribers a tenant has on this process, each wake-up (a notification, a poll tick) costs one read
of the tenant's log, not one per subscriber. Each subscriber has a bounded buffer; one that cannot keep up is
failed with RESOURCE_EXHAUSTED (it resumes from its last cursor and replays from the log, losing nothing) rather
than growing without bound or slowing the others.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
import psycopg_pool
import structlog

from statemgr.domain.errors import OutOfRange, ResourceExhausted, StatemgrError, Unavailable
from statemgr.events import log as event_log
from statemgr.events import metrics
from statemgr.events.cursor import Position
from statemgr.store.db import Database
from statemgr.store.events import StoredEvent

_log = structlog.get_logger("statemgr.events.feed")

# While events wait behind an older open transaction, read again after 10 ms, 20 ms, ... at most 250 ms. The
# transaction that ends the wait may be anywhere in the cluster and notify nobody, so this (not a notification) is
# what bounds the extra delay; each retry is one index probe.
_HELD_FIRST_RETRY = 0.01
_HELD_MAX_RETRY = 0.25
# Subscribers woken per turn of the event loop: an event for a thousand streams wakes them in slices, so the calls
# this process answers meanwhile wait behind one slice (a fraction of a millisecond of sending), not behind all of
# them. A call takes several turns, each behind a slice: 32 kept a writer's p50 at 5x its figure beside 1,000
# streams, 8 keeps it within 1.2x (bench/FANOUT.md).
_WAKE_SLICE = 8


@dataclasses.dataclass(slots=True)
class Delivery:
    """An event on its way to subscribers; `rendered` holds the api layer's wire form, built once and shared."""

    event: StoredEvent
    rendered: Any = None


class Subscriber:
    """A subscriber's buffer of live events, fed by its tenant's feed."""

    def __init__(self, wanted: event_log.Filter, capacity: int) -> None:
        self.wanted = wanted
        self.capacity = capacity
        self.skip_until = Position(0, 0)
        self.reached = Position(0, 0)
        self.error: StatemgrError | None = None
        self._items: collections.deque[Delivery] = collections.deque()
        self._ready = asyncio.Event()

    def offer(self, delivery: Delivery) -> bool:
        """Buffers the delivery if wanted; False once the subscriber has failed (it then leaves the feed)."""
        if delivery.event.position <= self.skip_until or not self.wanted.matches(delivery.event):
            return self.error is None
        if len(self._items) >= self.capacity:
            metrics.SUBSCRIBER_OVERFLOWS.inc()
            self.fail(
                ResourceExhausted(
                    f"the subscriber fell more than {self.capacity} events behind; resume with the last cursor"
                )
            )
            return False
        self._items.append(delivery)
        self._ready.set()
        return True

    def fail(self, error: StatemgrError) -> None:
        self.error = self.error or error
        self._ready.set()

    async def next(self, wait_seconds: float) -> Delivery | None:
        """The next buffered event, None after `wait_seconds` without one; once the buffer is empty, raises the
        error the feed set (events buffered before the failure are still good, so they go out first)."""
        while not self._items and self.error is None:
            self._ready.clear()
            try:
                # asyncio.timeout, not wait_for: wait_for wraps the wait in a task of its own, and a thousand
                # streams take this path for every event (measured: bench/fanout.py).
                async with asyncio.timeout(wait_seconds):
                    await self._ready.wait()
            except TimeoutError:
                return None
        if self._items:
            return self._items.popleft()
        assert self.error is not None
        raise self.error


class TenantFeed:
    """Reads one tenant's log from `position` on, whenever woken or every `poll_seconds`, and fans out."""

    def __init__(self, db: Database, tenant_id: uuid.UUID, position: Position, poll_seconds: float) -> None:
        self.db = db
        self.tenant_id = tenant_id
        self.position = position
        self._poll = poll_seconds
        self._wide: set[Subscriber] = set()
        self._rooms: dict[uuid.UUID, set[Subscriber]] = collections.defaultdict(set)
        self._all: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def empty(self) -> bool:
        return not self._all

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"event-feed-{self.tenant_id}")

    def stop(self) -> None:
        """Asks the feed to end at its next wait (not cancelled mid-query, so its pool connection stays clean)."""
        self._stopping = True
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._task is None or self._task.done()

    async def wait_stopped(self) -> None:
        if self._task is not None:
            await asyncio.wait({self._task})

    def wake(self) -> None:
        self._wake.set()

    def attach(self, subscriber: Subscriber, after: Position) -> Position:
        """Adds the subscriber; it will get every wanted event after max(after, the returned position)."""
        subscriber.skip_until = after
        subscriber.reached = max(after, self.position)
        self._all.add(subscriber)
        for room in subscriber.wanted.conversation_ids or (None,):
            (self._wide if room is None else self._rooms[room]).add(subscriber)
        self._wake.set()
        return self.position

    def detach(self, subscriber: Subscriber) -> None:
        self._all.discard(subscriber)
        self._wide.discard(subscriber)
        for room in subscriber.wanted.conversation_ids:
            members = self._rooms.get(room)
            if members is not None:
                members.discard(subscriber)
                if not members:
                    del self._rooms[room]

    async def _run(self) -> None:
        retry: float | None = None
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), retry or self._poll)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            retry = await self._catch_up(retry)

    async def _catch_up(self, retry: float | None) -> float | None:
        """Reads until caught up; returns how soon to read again (None: at the next wake-up or poll)."""
        try:
            held = await self._drain()
        except OutOfRange as exc:
            self.fail_all(exc)
            return None
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            _log.warning("event_feed_read_failed", tenant_id=str(self.tenant_id), error=str(exc))
            return self._poll
        except Exception:  # a bug: end the streams (they resume elsewhere) rather than leave them silent forever
            _log.exception("event_feed_failed", tenant_id=str(self.tenant_id))
            self.fail_all(Unavailable("the event feed failed; resume with the last cursor"))
            return self._poll
        if not held:
            return None
        return min(self._poll, _HELD_MAX_RETRY, retry * 2 if retry else _HELD_FIRST_RETRY)

    async def _drain(self) -> bool:
        while True:
            page = await event_log.read(self.db, self.tenant_id, self.position)
            await self._deliver(page)
            if page.caught_up or self._stopping:
                return page.held

    async def _deliver(self, page: event_log.Page) -> None:
        """Offers the page's events to their subscribers, yielding to the loop every _WAKE_SLICE of them.

        The position moves to each event before its targets are taken: a subscriber that attaches while the event
        is being offered (during a yield) is not among them, and gets it from its own read of the log instead.
        """
        woken = 0
        for event in page.events:
            delivery = Delivery(event)
            self.position = event.position
            for subscriber in self._targets(event):
                if not subscriber.offer(delivery):
                    self.detach(subscriber)
                woken += 1
                if woken % _WAKE_SLICE == 0:
                    await asyncio.sleep(0)  # the slice's streams send, and calls get their turn, before the next
        self.position = page.position
        for subscriber in self._all:
            subscriber.reached = page.position

    def _targets(self, event: StoredEvent) -> Iterable[Subscriber]:
        room = self._rooms.get(event.conversation_id) if event.conversation_id is not None else None
        if not room:
            return list(self._wide)
        return [*self._wide, *room]

    def fail_all(self, error: StatemgrError) -> None:
        for subscriber in list(self._all):
            subscriber.fail(copy.copy(error))  # one exception object per stream: each gets its own traceback
            self.detach(subscriber)
