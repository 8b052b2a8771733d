"""The figures AnalyticsService answers, read from the rollups (never from the raw tables) in tenant transactions.

The reads of a period (`tenant_totals`, `agent_totals`, `error_codes`, `customers`, `open_now`, `volume`) are sent
on the caller's connection and answer a `Pending`: in a pipelined transaction (Database.pipelined) they all travel
with its COMMIT, in one round trip, and their rows are read once it has committed (before the connection goes back
to the pool).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any, Generic, LiteralString, TypeVar

import numpy as np
from pyroaring import BitMap

from statemgr.analytics import histogram
from statemgr.analytics.fold import COUNTS, HISTOGRAMS, NIL
from statemgr.analytics.periods import Period
from statemgr.domain.errors import InvalidArgument
from statemgr.store import queries
from statemgr.store.db import Connection, Cursor, Database, Row

Q = queries.load("analytics")
TOP_ERROR_CODES = 10
T = TypeVar("T")


class Pending(Generic[T]):
    """A read sent on a connection: `result` reads its rows (in pipeline mode, sending what is queued first)."""

    def __init__(self, cursor: Cursor, parse: Callable[[list[Row]], T]) -> None:
        self._cursor = cursor
        self._parse = parse

    async def result(self) -> T:
        return self._parse(await self._cursor.fetchall())


async def _send(
    conn: Connection, query: LiteralString, params: Mapping[str, Any], parse: Callable[[list[Row]], T]
) -> Pending[T]:
    return Pending(await conn.execute(query, params), parse)


@dataclasses.dataclass(frozen=True, slots=True)
class Durations:
    """Count, exact sum (microseconds) and binned counts of a set of durations."""

    count: int
    total_us: int
    bins: np.ndarray

    @property
    def average_us(self) -> float | None:
        return self.total_us / self.count if self.count else None

    def percentile_us(self, p: float) -> float | None:
        return histogram.percentile(self.bins, p)


@dataclasses.dataclass(frozen=True, slots=True)
class Totals:
    """The sums of one set of rollup rows (a tenant's or an agent's) over a period."""

    agent_id: uuid.UUID
    counts: dict[str, int]
    histograms: dict[str, np.ndarray]

    def durations(self, name: str, count_name: str | None = None) -> Durations:
        count = self.counts[count_name or f"{name}_n"]
        return Durations(count, self.counts[f"{name}_us"], self.histograms[f"{name}_h"])

    @classmethod
    def empty(cls, agent_id: uuid.UUID) -> Totals:
        zeros = np.zeros(histogram.BINS, dtype=np.int64)
        return cls(agent_id, dict.fromkeys(COUNTS, 0), dict.fromkeys(HISTOGRAMS, zeros))


@dataclasses.dataclass(frozen=True, slots=True)
class Customers:
    active: int
    new: int
    returning: int


@dataclasses.dataclass(frozen=True, slots=True)
class Live:
    at: dt.datetime
    open_by_state: dict[str, int]
    oldest_waiting: dt.datetime | None
    messages_last_minute: int


@dataclasses.dataclass(frozen=True, slots=True)
class Lag:
    rollup_backlog: int
    rollup_lag_seconds: float
    event_backlog: int
    publish_lag_seconds: float


async def zone(conn: Connection, tenant_id: uuid.UUID, requested: str) -> zoneinfo.ZoneInfo:
    """The requested time zone, else the tenant's (read in the caller's transaction: its one read that waits)."""
    name = requested
    if not name:
        row = await (await conn.execute(Q["time_zone"], {"tenant_id": tenant_id})).fetchone()
        name = row["time_zone"] if row else "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument("time_zone", f"{name[:64]!r} is not an IANA time zone name") from None


async def tenant_totals(conn: Connection, tenant_id: uuid.UUID, period: Period) -> Pending[Totals]:
    """The tenant's sums over the period."""
    params = {"tenant_id": tenant_id, "nil": NIL, **period.params()}
    return await _send(conn, Q["totals"], params, lambda rows: _totals(rows[0]) if rows else Totals.empty(NIL))


async def agent_totals(
    conn: Connection, tenant_id: uuid.UUID, period: Period, agent: uuid.UUID | None
) -> Pending[list[Totals]]:
    """Every agent's sums over the period (one agent's when given): the figures GetAgentPerformance shows."""
    params = {"tenant_id": tenant_id, "agent": agent, "nil": NIL, **period.params()}
    return await _send(conn, Q["agent_totals"], params, lambda rows: [_totals(row) for row in rows])


def _totals(row: dict[str, Any]) -> Totals:
    """Sums as a query returned them; figures the query left out are zero."""
    counts = {name: int(row.get(name) or 0) for name in COUNTS}
    hists = {name: histogram.totals([bytes(row.get(name) or b"")]) for name in HISTOGRAMS}
    return Totals(row["agent_id"], counts, hists)


async def error_codes(conn: Connection, tenant_id: uuid.UUID, period: Period) -> Pending[list[tuple[str, int]]]:
    params = {"tenant_id": tenant_id, "limit": TOP_ERROR_CODES, **period.params()}
    return await _send(conn, Q["error_codes"], params, lambda rows: [(r["error_code"], int(r["failed"])) for r in rows])


async def customers(conn: Connection, tenant_id: uuid.UUID, period: Period) -> Pending[Customers]:
    """Distinct customers over the period: the union of its buckets' bitmaps."""
    return await _send(conn, Q["customer_sets"], {"tenant_id": tenant_id, **period.params()}, _customers)


def _customers(rows: list[Row]) -> Customers:
    active = BitMap.union(BitMap(), *(BitMap.deserialize(bytes(r["active"])) for r in rows))
    created = BitMap.union(BitMap(), *(BitMap.deserialize(bytes(r["created"])) for r in rows))
    return Customers(active=len(active), new=len(created), returning=len(active - created))


async def open_now(conn: Connection, tenant_id: uuid.UUID) -> Pending[dict[str, int]]:
    params = {"tenant_id": tenant_id}
    return await _send(conn, Q["open_now"], params, lambda rows: {r["state"]: int(r["conversations"]) for r in rows})


_VOLUME = ("opened", "closed", "inbound", "outbound")


async def volume(
    conn: Connection, tenant_id: uuid.UUID, period: Period, starts: list[dt.datetime]
) -> Pending[list[dict[str, int]]]:
    """Per bucket (by its start in `starts`): opened, closed, inbound, outbound."""
    params = {"tenant_id": tenant_id, "nil": NIL, "bounds": starts, "start": period.start, "end": period.end}

    def parse(rows: list[Row]) -> list[dict[str, int]]:
        buckets = [dict.fromkeys(_VOLUME, 0) for _ in starts]
        for row in rows:
            buckets[int(row["bucket_number"]) - 1] = {name: int(row[name]) for name in _VOLUME}
        return buckets

    return await _send(conn, Q["volume"], params, parse)


async def live(db: Database, tenant_id: uuid.UUID) -> Live:
    row = await db.one_row(tenant_id, Q["live"], {"tenant_id": tenant_id})
    assert row is not None
    return Live(row["now"], dict(row["open"]), row["oldest_waiting"], int(row["last_minute"]))


async def lag(db: Database, tenant_id: uuid.UUID) -> Lag:
    row = await db.one_row(tenant_id, Q["lag"], {"tenant_id": tenant_id})
    assert row is not None
    return Lag(
        int(row["rollup_backlog"]),
        float(row["rollup_lag"] or 0.0),
        int(row["event_backlog"]),
        float(row["publish_lag"] or 0.0),
    )
