"""The event log in PostgreSQL: appends (outbox), pages for subscribers, the relay's batches, pruning.

Appends and subscriber reads run inside tenant transactions (row-level security applies); the relay's and the
pruner's functions run on the leader's connection as statemgr_relay, which may see every tenant's rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from statemgr.events.cursor import END, Position
from statemgr.store import queries
from statemgr.store.db import Connection

Q = queries.load("events")


@dataclasses.dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the log."""

    tenant_id: uuid.UUID
    position: Position
    id: uuid.UUID
    type: str
    conversation_id: uuid.UUID | None
    payload: dict[str, str]
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class RawPage:
    """What one read returned: rows below the horizon, whether rows wait above it, and the tenant's floor."""

    events: list[StoredEvent]
    horizon: int
    held: bool
    floor: Position | None


@dataclasses.dataclass(frozen=True, slots=True)
class Backlog:
    events: int
    oldest_seconds: float
    unroutable: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """When an event returned as unroutable is tried again: after `first_seconds`, doubling, at most `max_seconds`."""

    first_seconds: float
    max_seconds: float


async def append(
    conn: Connection,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    conversation_id: uuid.UUID | None,
    payload: dict[str, str],
) -> None:
    params = {"tenant_id": tenant_id, "id": event_id, "type": event_type, "conversation_id": conversation_id}
    await conn.execute(Q["append"], {**params, "payload": Jsonb(payload)})


async def read_page(
    conn: Connection,
    tenant_id: uuid.UUID,
    after: Position,
    limit: int,
    conversation_ids: Sequence[uuid.UUID] = (),
    types: Sequence[str] = (),
    upto: Position = END,
) -> RawPage:
    """Rows after `after` (up to `upto`) in log order, for the whole tenant or the given conversations."""
    params = {
        "tenant_id": tenant_id,
        "after_tx": str(after.tx_id),
        "after_seq": after.seq,
        "upto_tx": str(upto.tx_id),
        "upto_seq": upto.seq,
        "types": list(types),
        "limit": limit,
        "conversation_ids": list(conversation_ids),
    }
    query = Q["read_rooms"] if conversation_ids else Q["read_tenant"]
    rows = await (await conn.execute(query, params)).fetchall()
    return _page(tenant_id, rows)


async def now(conn: Connection, tenant_id: uuid.UUID) -> tuple[int, list[int]]:
    """The current snapshot's xmin (every transaction below it has ended), and the seqs of the tenant's events
    already visible at or above it."""
    row = await (await conn.execute(Q["now"], {"tenant_id": tenant_id})).fetchone()
    assert row is not None
    return int(row["horizon"]), list(row["visible"])


async def unpublished(conn: Connection, limit: int) -> list[StoredEvent]:
    """The oldest events not yet published or found unroutable, every tenant, in seq order."""
    rows = await (await conn.execute(Q["unpublished"], {"limit": limit})).fetchall()
    return [_event(row["tenant_id"], row) for row in rows]


async def mark_published(conn: Connection, seqs: Sequence[int]) -> None:
    if seqs:
        await conn.execute(Q["mark_published"], {"seqs": list(seqs)})


async def mark_unroutable(conn: Connection, seqs: Sequence[int], backoff: Backoff) -> None:
    """Records that the broker returned these events, and when each is due again."""
    if seqs:
        params = {"seqs": list(seqs), "first_seconds": backoff.first_seconds, "max_seconds": backoff.max_seconds}
        await conn.execute(Q["mark_unroutable"], params)


async def unroutable_due(conn: Connection, limit: int) -> list[StoredEvent]:
    """Events returned as unroutable whose retry is due, every tenant, soonest first."""
    rows = await (await conn.execute(Q["unroutable_due"], {"limit": limit})).fetchall()
    return [_event(row["tenant_id"], row) for row in rows]


async def retry_unroutable_now(conn: Connection, tenant_id: uuid.UUID | None = None) -> int:
    """Makes every waiting unroutable event (of `tenant_id`, or all) due now; returns how many."""
    cursor = await conn.execute(Q["retry_unroutable_now"], {"tenant_id": tenant_id})
    return cursor.rowcount


async def backlog(conn: Connection) -> Backlog:
    row = await (await conn.execute(Q["backlog"])).fetchone()
    assert row is not None
    return Backlog(int(row["events"]), float(row["oldest_seconds"] or 0.0), int(row["unroutable"]))


async def retention_periods(conn: Connection, cap_seconds: float) -> list[tuple[uuid.UUID, dt.timedelta]]:
    """Every tenant and its effective event retention."""
    rows = await (await conn.execute(Q["retention_periods"], {"cap_seconds": cap_seconds})).fetchall()
    return [(row["tenant_id"], row["retention"]) for row in rows]


async def prune_tenant(
    conn: Connection, tenant_id: uuid.UUID, retention: dt.timedelta, require_published: bool, batch: int
) -> int:
    """Deletes up to `batch` of the tenant's oldest prunable events and raises its floor; returns how many."""
    params = {"tenant_id": tenant_id, "retention": retention, "require_published": require_published, "batch": batch}
    row = await (await conn.execute(Q["prune_tenant"], params)).fetchone()
    return int(row["deleted"]) if row else 0


def _page(tenant_id: uuid.UUID, rows: list[dict[str, Any]]) -> RawPage:
    first = rows[0]
    floor = None if first["floor_tx"] is None else Position(int(first["floor_tx"]), int(first["floor_seq"]))
    events = [_event(tenant_id, row) for row in rows if row["seq"] is not None]
    return RawPage(events=events, horizon=int(first["horizon"]), held=first["held"], floor=floor)


def _event(tenant_id: uuid.UUID, row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        tenant_id=tenant_id,
        position=Position(int(row["tx_id"]), int(row["seq"])),
        id=row["id"],
        type=row["type"],
        conversation_id=row["conversation_id"],
        payload=row["payload"],
        created_at=row["created_at"],
    )
