"""The figures AnalyticsService answers, read from the rollups (never from the raw tables) in tenant transactions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
import zoneinfo
from typing import Any

import numpy as np
from pyroaring import BitMap

from statemgr.analytics import histogram
from statemgr.analytics.fold import COUNTS, HISTOGRAMS, NIL
from statemgr.analytics.periods import Period
from statemgr.domain.errors import InvalidArgument
from statemgr.store import queries
from statemgr.store.db import Connection, Database

Q = queries.load("analytics")
TOP_ERROR_CODES = 10


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


async def zone(db: Database, tenant_id: uuid.UUID, requested: str) -> zoneinfo.ZoneInfo:
    """The requested time zone, else the tenant's."""
    name = requested
    if not name:
        async with db.tenant(tenant_id) as conn:
            row = await (await conn.execute(Q["time_zone"], {"tenant_id": tenant_id})).fetchone()
        name = row["time_zone"] if row else "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument("time_zone", f"{name[:64]!r} is not an IANA time zone name") from None


async def tenant_totals(conn: Connection, tenant_id: uuid.UUID, period: Period) -> Totals:
    """The tenant's sums over the period."""
    params = {"tenant_id": tenant_id, "nil": NIL, **period.params()}
    row = await (await conn.execute(Q["totals"], params)).fetchone()
    return _totals(row) if row else Totals.empty(NIL)


async def agent_totals(conn: Connection, tenant_id: uuid.UUID, period: Period, agent: uuid.UUID | None) -> list[Totals]:
    """Every agent's sums over the period (one agent's when given): the figures GetAgentPerformance shows."""
    params = {"tenant_id": tenant_id, "agent": agent, "nil": NIL, **period.params()}
    rows = await (await conn.execute(Q["agent_totals"], params)).fetchall()
    return [_totals(row) for row in rows]


def _totals(row: dict[str, Any]) -> Totals:
    """Sums as a query returned them; figures the query left out are zero."""
    counts = {name: int(row.get(name) or 0) for name in COUNTS}
    hists = {name: histogram.totals([bytes(row.get(name) or b"")]) for name in HISTOGRAMS}
    return Totals(row["agent_id"], counts, hists)


async def error_codes(conn: Connection, tenant_id: uuid.UUID, period: Period) -> list[tuple[str, int]]:
    params = {"tenant_id": tenant_id, "limit": TOP_ERROR_CODES, **period.params()}
    rows = await (await conn.execute(Q["error_codes"], params)).fetchall()
    return [(row["error_code"], int(row["failed"])) for row in rows]


async def customers(conn: Connection, tenant_id: uuid.UUID, period: Period) -> Customers:
    """Distinct customers over the period: the union of its buckets' bitmaps."""
    rows = await (await conn.execute(Q["customer_sets"], {"tenant_id": tenant_id, **period.params()})).fetchall()
    active = BitMap.union(BitMap(), *(BitMap.deserialize(bytes(r["active"])) for r in rows))
    created = BitMap.union(BitMap(), *(BitMap.deserialize(bytes(r["created"])) for r in rows))
    return Customers(active=len(active), new=len(created), returning=len(active - created))


async def open_now(conn: Connection, tenant_id: uuid.UUID) -> dict[str, int]:
    rows = await (await conn.execute(Q["open_now"], {"tenant_id": tenant_id})).fetchall()
    return {row["state"]: int(row["conversations"]) for row in rows}


async def volume(
    conn: Connection, tenant_id: uuid.UUID, period: Period, starts: list[dt.datetime]
) -> list[dict[str, int]]:
    """Per bucket (by its start in `starts`): opened, closed, inbound, outbound."""
    params = {"tenant_id": tenant_id, "nil": NIL, "bounds": starts, "start": period.start, "end": period.end}
    rows = await (await conn.execute(Q["volume"], params)).fetchall()
    buckets = [dict.fromkeys(("opened", "closed", "inbound", "outbound"), 0) for _ in starts]
    for row in rows:
        index = int(row["bucket_number"]) - 1
        buckets[index] = {name: int(row[name]) for name in ("opened", "closed", "inbound", "outbound")}
    return buckets


async def live(db: Database, tenant_id: uuid.UUID) -> Live:
    async with db.tenant(tenant_id) as conn:
        row = await (await conn.execute(Q["live"], {"tenant_id": tenant_id})).fetchone()
    assert row is not None
    return Live(row["now"], dict(row["open"]), row["oldest_waiting"], int(row["last_minute"]))


async def lag(db: Database, tenant_id: uuid.UUID) -> Lag:
    async with db.tenant(tenant_id) as conn:
        row = await (await conn.execute(Q["lag"], {"tenant_id": tenant_id})).fetchone()
    assert row is not None
    return Lag(
        int(row["rollup_backlog"]),
        float(row["rollup_lag"] or 0.0),
        int(row["event_backlog"]),
        float(row["publish_lag"] or 0.0),
    )
