"""Periods of analytics requests: validated, rounded to whole hours, split into UTC days and edge hours, and cut
into volume buckets in a time zone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Iterator
from typing import Any

from statemgr.domain.errors import InvalidArgument

MAX_PERIOD = dt.timedelta(days=400)
MAX_BUCKETS = 10_000
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
GRAINS = ("w", "d", "h")  # the rollups' bucket sizes, coarsest first: a UTC week from Monday, a UTC day, an hour


@dataclasses.dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in whole UTC hours, read in `zone`."""

    start: dt.datetime
    end: dt.datetime
    zone: zoneinfo.ZoneInfo

    def pieces(self) -> list[tuple[str, dt.datetime, dt.datetime]]:
        """The period as whole UTC weeks (from Monday), whole UTC days and hours: (grain, from, to), at most five,
        so that a 90-day period sums about sixty rollup rows instead of 2160."""
        return _pieces(self.start, self.end, GRAINS)

    def params(self) -> dict[str, list[Any]]:
        """The pieces as the arrays the named queries read (see analytics.sql)."""
        pieces = self.pieces()
        return {"grains": [p[0] for p in pieces], "froms": [p[1] for p in pieces], "tos": [p[2] for p in pieces]}


def period(start: dt.datetime, end: dt.datetime, zone: zoneinfo.ZoneInfo) -> Period:
    """The period, its start rounded down and its end up to the hour; INVALID_ARGUMENT when inverted or too long."""
    if end <= start:
        raise InvalidArgument("range.end_time", "must be after range.start_time")
    if end - start > MAX_PERIOD:
        raise InvalidArgument("range", f"spans more than {MAX_PERIOD.days} days")
    rounded_end = _hour(end)
    if rounded_end < end:
        rounded_end += HOUR
    return Period(_hour(start), rounded_end, zone)


def bucket_starts(period: Period, size: str, interval: dt.timedelta | None) -> list[dt.datetime]:
    """The starts of the volume buckets (the first is the period's start); INVALID_ARGUMENT past MAX_BUCKETS."""
    if size == "hour" or (size == "" and interval == HOUR):
        starts = list(_steps(period, HOUR))
    elif size in ("day", "week"):
        starts = [period.start, *_local_midnights(period, weekly=size == "week")]
    elif interval is not None and interval >= HOUR and interval % HOUR == dt.timedelta(0):
        starts = list(_steps(period, interval))
    else:
        raise InvalidArgument("interval", "must be a whole number of hours (or set bucket_size)")
    return starts


def _steps(period: Period, step: dt.timedelta) -> Iterator[dt.datetime]:
    if (period.end - period.start) / step > MAX_BUCKETS:
        raise InvalidArgument("interval", f"would cut the range into more than {MAX_BUCKETS} buckets")
    at = period.start
    while at < period.end:
        yield at
        at += step


def _local_midnights(period: Period, weekly: bool) -> Iterator[dt.datetime]:
    """Local midnights strictly inside the period (Mondays only when weekly), rounded down to the UTC hour: a zone
    whose offset is not whole hours (India, Nepal) has its days start at the hour before its midnight."""
    day = period.start.astimezone(period.zone).date() + DAY
    while True:
        midnight = _hour(dt.datetime.combine(day, dt.time(0), tzinfo=period.zone).astimezone(dt.UTC))
        if midnight >= period.end:
            return
        if midnight > period.start and (not weekly or day.weekday() == 0):
            yield midnight
        day += DAY


def _pieces(
    start: dt.datetime, end: dt.datetime, grains: tuple[str, ...]
) -> list[tuple[str, dt.datetime, dt.datetime]]:
    grain, finer = grains[0], grains[1:]
    if not finer:
        return [(grain, start, end)] if start < end else []
    inner_start, inner_end = _ceil(start, grain), _floor(end, grain)
    if inner_start >= inner_end:
        return _pieces(start, end, finer)
    return [*_pieces(start, inner_start, finer), (grain, inner_start, inner_end), *_pieces(inner_end, end, finer)]


def _floor(at: dt.datetime, grain: str) -> dt.datetime:
    midnight = _midnight(at)
    return midnight - dt.timedelta(days=midnight.weekday()) if grain == "w" else midnight


def _ceil(at: dt.datetime, grain: str) -> dt.datetime:
    floor = _floor(at, grain)
    return floor if floor == at else floor + (WEEK if grain == "w" else DAY)


def _hour(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _midnight(at: dt.datetime) -> dt.datetime:
    return _hour(at).replace(hour=0)
