"""Reading a tenant's event log in cursor order, under row-level security, one page at a time."""

from __future__ import annotations

import dataclasses
import uuid

from statemgr.domain.errors import OutOfRange
from statemgr.events.cursor import END, START, Position
from statemgr.store import events as store
from statemgr.store.db import Database
from statemgr.store.events import StoredEvent

PAGE_SIZE = 500


@dataclasses.dataclass(frozen=True, slots=True)
class Filter:
    """Which events a subscriber wants: some conversations ("rooms") or all, some types or all."""

    conversation_ids: frozenset[uuid.UUID] = frozenset()
    types: frozenset[str] = frozenset()

    def matches(self, event: StoredEvent) -> bool:
        if self.types and event.type not in self.types:
            return False
        return not self.conversation_ids or event.conversation_id in self.conversation_ids


EVERYTHING = Filter()


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """Deliverable events in order, and where the next read starts.

    `caught_up`: the read reached the horizon (or its bound), so `position` may be a horizon past the last event.
    `held`: events are committed beyond the horizon, waiting for an older transaction to end.
    """

    events: list[StoredEvent]
    position: Position
    caught_up: bool
    held: bool


async def read(
    db: Database,
    tenant_id: uuid.UUID,
    after: Position,
    wanted: Filter = EVERYTHING,
    upto: Position = END,
    limit: int = PAGE_SIZE,
) -> Page:
    """The page after `after`; OUT_OF_RANGE if events after it have been pruned.

    `after` = START means "from the oldest event kept": it never answers OUT_OF_RANGE.
    """
    raw = await _read(db, tenant_id, after, wanted, upto, limit)
    if raw.floor is not None and after < raw.floor:
        if after != START:
            raise OutOfRange("the cursor is older than the retained event log")
        after = raw.floor
        raw = await _read(db, tenant_id, after, wanted, upto, limit)
    return _page(raw, after, upto, limit)


async def now(db: Database, tenant_id: uuid.UUID) -> tuple[Position, frozenset[int]]:
    """Where "now" is in the log: a position (everything before it is final and committed before now), and the
    seqs of events after it that were committed before now too (an older open transaction holds the horizon back)."""
    async with db.tenant(tenant_id) as conn:
        xmin, visible = await store.now(conn, tenant_id)
    return Position.horizon(xmin), frozenset(visible)


async def _read(
    db: Database, tenant_id: uuid.UUID, after: Position, wanted: Filter, upto: Position, limit: int
) -> store.RawPage:
    async with db.tenant(tenant_id) as conn:
        return await store.read_page(
            conn, tenant_id, after, limit, sorted(wanted.conversation_ids), sorted(wanted.types), upto
        )


def _page(raw: store.RawPage, after: Position, upto: Position, limit: int) -> Page:
    last = raw.events[-1].position if raw.events else after
    caught_up = len(raw.events) < limit
    position = max(after, last, min(Position.horizon(raw.horizon), upto)) if caught_up else last
    return Page(events=raw.events, position=position, caught_up=caught_up, held=raw.held)
