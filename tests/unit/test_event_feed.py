"""Fan-out to subscribers: filters, skipping what a subscriber has seen, bounded buffers, page positions."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from statemgr.domain.errors import ResourceExhausted
from statemgr.events import feed as feed_module
from statemgr.events import log
from statemgr.events.cursor import END, START, Position
from statemgr.events.feed import Delivery, Subscriber, TenantFeed
from statemgr.store.events import RawPage, StoredEvent

TENANT = uuid.uuid4()
ROOM, OTHER = uuid.uuid4(), uuid.uuid4()


def event(tx: int, seq: int, room: uuid.UUID | None = ROOM, kind: str = "conversation.state_changed") -> StoredEvent:
    return StoredEvent(TENANT, Position(tx, seq), uuid.uuid4(), kind, room, {}, dt.datetime.now(dt.UTC))


def page(*events: StoredEvent, position: Position | None = None) -> log.Page:
    return log.Page(list(events), position or events[-1].position, caught_up=True, held=False)


def test_filter_matches_rooms_and_types() -> None:
    rooms = log.Filter(conversation_ids=frozenset({ROOM}))
    assert rooms.matches(event(1, 1)) and not rooms.matches(event(1, 2, OTHER)) and not rooms.matches(event(1, 3, None))
    closed = log.Filter(types=frozenset({"conversation.closed"}))
    assert closed.matches(event(1, 1, kind="conversation.closed")) and not closed.matches(event(1, 2))
    assert log.EVERYTHING.matches(event(1, 1, None))


async def test_feed_fans_out_by_room_and_skips_what_a_subscriber_has() -> None:
    feed = TenantFeed(db=None, tenant_id=TENANT, position=Position(10, 0), poll_seconds=1.0)  # type: ignore[arg-type]
    room, wide = Subscriber(log.Filter(frozenset({ROOM})), 10), Subscriber(log.EVERYTHING, 10)
    assert feed.attach(room, Position(10, 0)) == Position(10, 0)
    feed.attach(wide, Position(11, 5))  # has seen up to (11, 5) already
    events = [event(11, 5), event(11, 6, OTHER), event(12, 1)]
    await feed._deliver(page(*events, position=Position.horizon(13)))
    assert [d.event for d in await _drain(room)] == [events[0], events[2]]
    assert [d.event for d in await _drain(wide)] == events[1:]
    assert room.reached == wide.reached == Position.horizon(13) == feed.position


async def test_a_full_buffer_fails_the_subscriber_and_it_leaves_the_feed() -> None:
    feed = TenantFeed(db=None, tenant_id=TENANT, position=START, poll_seconds=1.0)  # type: ignore[arg-type]
    slow = Subscriber(log.EVERYTHING, 2)
    feed.attach(slow, START)
    events = [event(1, 1), event(1, 2), event(1, 3)]
    await feed._deliver(page(*events))
    assert feed.empty
    assert [d.event for d in [await slow.next(0), await slow.next(0)]] == events[:2]  # buffered before the failure
    with pytest.raises(ResourceExhausted):
        await slow.next(0.1)


async def test_a_subscriber_attaching_while_an_event_is_offered_reads_that_event_from_the_log() -> None:
    """Offering one event to many subscribers yields to the loop in slices; one attaching meanwhile is told to read
    the log up to that event itself, and the feed gives it every later one: no gap, no duplicate."""
    feed = TenantFeed(db=None, tenant_id=TENANT, position=START, poll_seconds=1.0)  # type: ignore[arg-type]
    crowd = [Subscriber(log.EVERYTHING, 10) for _ in range(3 * feed_module._WAKE_SLICE)]
    for subscriber in crowd:
        feed.attach(subscriber, START)
    first, second = event(1, 1), event(1, 2)
    late = Subscriber(log.EVERYTHING, 10)
    attached_at: list[Position] = []

    async def attach_midway() -> None:
        attached_at.append(feed.attach(late, START))

    joining = asyncio.create_task(attach_midway())  # runs at the feed's first yield, while `first` is offered
    await feed._deliver(page(first, second))
    await joining
    assert attached_at == [first.position]  # read the log up to and including `first`
    assert [d.event for d in await _drain(late)] == [second]
    assert [[d.event for d in await _drain(s)] for s in crowd] == [[first, second]] * len(crowd)


async def test_next_times_out_with_none() -> None:
    assert await Subscriber(log.EVERYTHING, 2).next(0.01) is None


def test_page_position_moves_to_the_horizon_only_when_caught_up() -> None:
    rows = [event(5, 1), event(6, 2)]
    caught_up = log._page(RawPage(rows, horizon=9, held=False, floor=None), START, END, limit=10)
    assert caught_up.caught_up and caught_up.position == Position.horizon(9)
    full = log._page(RawPage(rows, horizon=9, held=False, floor=None), START, END, limit=2)
    assert not full.caught_up and full.position == Position(6, 2)
    bounded = log._page(RawPage(rows, horizon=9, held=False, floor=None), START, Position(7, 3), limit=10)
    assert bounded.position == Position(7, 3)
    ahead = log._page(RawPage([], horizon=9, held=True, floor=None), Position(20, 1), END, limit=10)
    assert ahead.position == Position(20, 1) and ahead.held


async def _drain(subscriber: Subscriber) -> list[Delivery]:
    out = []
    while (item := await subscriber.next(0)) is not None:
        out.append(item)
    return out
