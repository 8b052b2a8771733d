"""Subscribe's engine: replay a subscriber from its cursor out of the log, then hand it over to the live feed.

A stream goes through three steps, each gap-free and duplicate-free because the log has one total order
(statemgr.events.cursor):

1. replay: read pages of the log after the cursor, with the subscriber's filter, until a read reaches the horizon;
2. attach: join the tenant's feed (statemgr.events.feed), which delivers every event after its own position P;
   events between the subscriber's position and P (if P is ahead) are read from the log once more, and events at
   or before the subscriber's position (if P is behind) are skipped;
3. live: events from the feed; a heartbeat with the resume cursor whenever none arrived for a while.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

import structlog

from statemgr.domain.errors import Unavailable
from statemgr.events import log as event_log
from statemgr.events import metrics
from statemgr.events.cursor import END, START, Position
from statemgr.events.feed import Delivery, Subscriber, TenantFeed
from statemgr.store.db import Database

_log = structlog.get_logger("statemgr.events.subscriptions")
_SHUTTING_DOWN = Unavailable("the server is shutting down; resume with the last cursor")


@dataclasses.dataclass(frozen=True, slots=True)
class Heartbeat:
    """Nothing new; `position` is where to resume if the stream breaks now."""

    position: Position


@dataclasses.dataclass(frozen=True, slots=True)
class Start:
    """Where a subscription starts: after a position, from now, or (neither) from the oldest event kept."""

    after: Position | None = None
    from_now: bool = False


Item = Delivery | Heartbeat


class Dispatcher:
    """The tenant feeds of this process and the subscriptions attached to them."""

    def __init__(self, db: Database, poll_seconds: float, heartbeat_seconds: float, buffer_size: int) -> None:
        self.db = db
        self.heartbeat_seconds = heartbeat_seconds
        self.buffer_size = buffer_size
        self._poll = poll_seconds
        self._feeds: dict[uuid.UUID, TenantFeed] = {}
        self._retired: set[TenantFeed] = set()  # stopped when their last subscriber left; may still be reading
        self._closing = False

    def wake(self, tenant: str | None) -> None:
        """A notification for `tenant` (None: for anyone) arrived."""
        if tenant is None:
            for each in self._feeds.values():
                each.wake()
            return
        try:
            feed = self._feeds.get(uuid.UUID(tenant))
        except ValueError:
            return
        if feed is not None:
            feed.wake()

    def close_streams(self) -> None:
        """Ends every stream with UNAVAILABLE (resume elsewhere with the last cursor) and refuses new ones.

        Called when the server starts shutting down: a stream never ends by itself, so without this every shutdown
        would wait out its whole grace period.
        """
        self._closing = True
        for feed in self._feeds.values():
            feed.fail_all(_SHUTTING_DOWN)

    async def stop(self) -> None:
        feeds = [*self._feeds.values(), *self._retired]
        self._feeds.clear()
        self._retired.clear()
        for feed in feeds:
            feed.stop()
        for feed in feeds:
            await feed.wait_stopped()

    def stream(self, tenant_id: uuid.UUID, wanted: event_log.Filter, start: Start) -> AsyncGenerator[Item]:
        """The subscription's items, until the caller stops iterating (and closes it: contextlib.aclosing) or an
        error (OUT_OF_RANGE, ...) is raised. The stream's own generator, not a wrapper around it: every delivery
        passes through each generator layer, and a thousand streams make that count."""
        return _Stream(self, tenant_id, wanted).run(start)

    def attach(self, tenant_id: uuid.UUID, subscriber: Subscriber, after: Position) -> tuple[TenantFeed, Position]:
        if self._closing:
            raise copy.copy(_SHUTTING_DOWN)
        feed = self._feeds.get(tenant_id)
        if feed is None:
            feed = TenantFeed(self.db, tenant_id, after, self._poll)
            self._feeds[tenant_id] = feed
            feed.start()
        return feed, feed.attach(subscriber, after)

    def detach(self, feed: TenantFeed, subscriber: Subscriber) -> None:
        feed.detach(subscriber)
        if feed.empty and self._feeds.get(feed.tenant_id) is feed:
            del self._feeds[feed.tenant_id]
            feed.stop()
            self._retired = {f for f in self._retired if not f.stopped}
            self._retired.add(feed)


class _Stream:
    """One subscription's state: the position of the last item it produced."""

    def __init__(self, dispatcher: Dispatcher, tenant_id: uuid.UUID, wanted: event_log.Filter) -> None:
        self.dispatcher = dispatcher
        self.db = dispatcher.db
        self.tenant_id = tenant_id
        self.wanted = wanted
        self.position = START
        self.already: frozenset[int] = frozenset()  # seqs committed before a from_now subscription began

    async def run(self, start: Start) -> AsyncGenerator[Item]:
        metrics.SUBSCRIBERS.inc()
        try:
            if start.from_now:
                self.position, self.already = await event_log.now(self.db, self.tenant_id)
            else:
                async for delivery in self._replay(start.after or START):
                    yield delivery
            subscriber = Subscriber(self.wanted, self.dispatcher.buffer_size)
            feed, live_from = self.dispatcher.attach(self.tenant_id, subscriber, self.position)
            try:
                async for delivery in self._replay(self.position, upto=live_from):
                    yield delivery
                yield Heartbeat(self.position)  # the stream is live from here on
                while True:  # the live loop, inline rather than one more generator each delivery goes through
                    item = self._live(await subscriber.next(self.dispatcher.heartbeat_seconds), subscriber)
                    if item is not None:
                        yield item
            finally:
                self.dispatcher.detach(feed, subscriber)
        finally:
            metrics.SUBSCRIBERS.dec()

    async def _replay(self, after: Position, upto: Position = END) -> AsyncIterator[Delivery]:
        """Events after `after` (up to `upto`) straight from the log; leaves self.position where it stopped."""
        if upto <= after:
            return
        self.position = after
        while True:
            page = await event_log.read(self.db, self.tenant_id, self.position, self.wanted, upto)
            for event in page.events:
                if event.position.seq not in self.already:
                    yield Delivery(event)
            self.position = page.position
            if page.caught_up:
                return

    def _live(self, delivery: Delivery | None, subscriber: Subscriber) -> Item | None:
        """What a live wait produced: the delivery, a heartbeat when none came, None for one already seen."""
        if delivery is None:
            self.position = max(self.position, subscriber.reached)
            return Heartbeat(self.position)
        self.position = delivery.event.position
        return delivery if delivery.event.position.seq not in self.already else None
