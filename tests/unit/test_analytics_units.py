"""The analytics building blocks without I/O: histogram bins and percentiles, periods, and folding rules."""

from __future__ import annotations

import collections
import datetime as dt
import math
import random
import uuid
import zoneinfo

import numpy as np
import pytest

from statemgr.analytics import fold, histogram, periods
from statemgr.domain.errors import InvalidArgument

UTC = zoneinfo.ZoneInfo("UTC")
T = dt.datetime(2026, 10, 24, 22, 30, tzinfo=dt.UTC)


def test_a_percentile_is_the_middle_of_the_bin_holding_the_exact_nearest_rank_value() -> None:
    rng = random.Random(5)
    values = [int(rng.lognormvariate(math.log(60e6), 1.5)) for _ in range(5000)] + [0, 10, 999, 1000]
    counts: collections.Counter[int] = collections.Counter(histogram.bin_of(v) for v in values)
    merged = histogram.totals([histogram.encode(counts)])
    ordered = sorted(values)
    for p in (0.5, 0.9, 0.99, 1.0):
        exact = ordered[math.ceil(p * len(ordered)) - 1]
        got = histogram.percentile(merged, p)
        assert got is not None and histogram.bin_of(round(got)) == histogram.bin_of(exact)
        assert abs(got - exact) <= max(500, exact * histogram.RELATIVE_ERROR)


def test_histograms_merge_by_concatenation() -> None:
    a = collections.Counter({0: 2, 5: 1, 100: 7})
    b = collections.Counter({5: 3, 256: 1})
    merged = histogram.totals([histogram.encode(a), histogram.encode(b)])
    assert merged[5] == 4 and merged[100] == 7 and merged[256] == 1 and int(merged.sum()) == 14
    assert histogram.percentile(np.zeros(histogram.BINS, dtype=np.int64), 0.5) is None


def test_bins_cover_the_whole_range() -> None:
    assert histogram.bin_of(-5) == 0 and histogram.bin_of(999) == 0 and histogram.bin_of(1000) == 1
    assert histogram.bin_of(400 * 86_400 * 10**6) < histogram.BINS - 1
    assert histogram.bin_of(10**18) == histogram.BINS - 1


def at(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, 10, day, hour, tzinfo=dt.UTC)


def test_a_period_is_rounded_to_whole_hours_and_split_into_weeks_days_and_edge_hours() -> None:
    p = periods.period(T, T + dt.timedelta(days=3, minutes=10), UTC)
    assert (p.start, p.end) == (at(24, 22), at(27, 23))
    assert p.pieces() == [("h", at(24, 22), at(25)), ("d", at(25), at(27)), ("h", at(27), at(27, 23))]
    long = periods.period(at(1, 5), at(30, 7), UTC)  # October 5th 2026 is a Monday
    assert long.pieces() == [
        ("h", at(1, 5), at(2)),
        ("d", at(2), at(5)),
        ("w", at(5), at(26)),
        ("d", at(26), at(30)),
        ("h", at(30), at(30, 7)),
    ]
    assert periods.period(T, T + dt.timedelta(hours=5), UTC).pieces() == [("h", at(24, 22), at(25, 4))]


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (T, T, "range.end_time"),
        (T, T - dt.timedelta(hours=1), "range.end_time"),
        (T, T + dt.timedelta(days=401), "range"),
    ],
)
def test_bad_periods_name_the_field(start: dt.datetime, end: dt.datetime, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        periods.period(start, end, UTC)
    assert caught.value.field == field


def test_more_than_ten_thousand_buckets_is_refused() -> None:
    wide = periods.Period(T, T + dt.timedelta(hours=10_001), UTC)  # longer than a request may ask: the rule itself
    with pytest.raises(InvalidArgument) as caught:
        periods.bucket_starts(wide, "hour", None)
    assert caught.value.field == "interval"


def test_weeks_start_on_local_monday_midnight() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    p = periods.period(dt.datetime(2026, 10, 20, tzinfo=dt.UTC), dt.datetime(2026, 11, 10, tzinfo=dt.UTC), berlin)
    starts = periods.bucket_starts(p, "week", None)
    assert [s.astimezone(berlin).strftime("%a %H:%M") for s in starts[1:]] == ["Mon 00:00"] * 3
    assert starts[1] == dt.datetime(2026, 10, 25, 23, tzinfo=dt.UTC)  # after the change back to CET


def test_a_status_report_moves_a_message_between_funnel_counts_instead_of_adding() -> None:
    conversation, message, agent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    f = fold.Fold({}, {}, {}, 0)
    at = T.isoformat()
    f.apply("conversation.created", conversation, {"agent_id": str(agent), "conversation_state": "active", "at": at})
    recorded = {"message_id": str(message), "direction": "outbound", "message_status": "sent", "at": at}
    f.apply("message.recorded", conversation, recorded)
    failed = {**recorded, "message_status": "failed", "error_code": "131047"}
    f.apply("message.status_changed", conversation, failed)
    delivered = {**recorded, "message_status": "delivered", "delivered_at": (T + dt.timedelta(seconds=3)).isoformat()}
    f.apply("message.status_changed", conversation, delivered)
    f.apply("message.status_changed", conversation, delivered)  # the same state again: no change
    hour = fold.buckets(T)[0]
    tenant_row, agent_row = f.rollups[(*hour, fold.NIL)], f.rollups[(*hour, agent)]
    for row in (tenant_row, agent_row):
        assert (row.counts["outbound"], row.counts["delivered"], row.counts["failed"]) == (1, 1, 0)
        assert row.counts["to_delivered_n"] == 1 and row.counts["to_delivered_us"] == 3_000_000
    assert f.error_codes[("h", hour[1], "131047")] == 0


def test_a_customer_number_notes_its_last_use_once_a_day_and_an_unknown_customer_gets_the_next_number() -> None:
    known, unknown = uuid.uuid4(), uuid.uuid4()
    f = fold.Fold({}, {}, {known: 3}, 10, last_seen={known: T - dt.timedelta(hours=2)})
    assert f.number(known, T) == 3 and f.seen == set()  # used two hours ago: nothing to write
    assert f.number(known, T + dt.timedelta(hours=23)) == 3 and f.seen == {known}  # a day after its last use
    assert f.number(unknown, T) == 10 and f.next_customer == 11  # never seen, or pruned: a new number
    assert f.seen == {known, unknown} and f.last_seen[unknown] == T


def test_a_fold_keeps_the_latest_event_time_and_which_messages_moved() -> None:
    conversation, message = uuid.uuid4(), uuid.uuid4()
    recorded = {"message_id": str(message), "direction": "outbound", "message_status": "sent", "at": T.isoformat()}
    f = fold.Fold({}, {}, {}, 0)
    f.apply("conversation.created", conversation, {"at": (T + dt.timedelta(minutes=5)).isoformat()})
    f.apply("message.recorded", conversation, recorded)
    assert f.latest == T + dt.timedelta(minutes=5) and f.moved == {message}
    stored = fold.Message(message, T, None, fold.funnel_facts(recorded, T))
    again = fold.Fold({}, {message: stored}, {}, 0)
    again.apply("message.status_changed", conversation, recorded)  # a duplicate report: nothing to write back
    assert again.moved == set()
