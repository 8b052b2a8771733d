"""The one status rank and how a report merges into a message's delivery (domain.messages.merge)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import uuid

import pytest

from statemgr.domain import messages as m
from statemgr.domain.errors import InvalidArgument

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
KEY = m.MessageKey(m.KeyKind.WHATSAPP, "wamid.1")


def at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def report(status: m.Status, seconds: int = 0, code: str = "", text: str = "") -> m.StatusReport:
    return m.StatusReport(KEY, status, at(seconds), code, text)


def apply(start: m.Delivery, *reports: m.StatusReport) -> m.Delivery:
    for each in reports:
        start = m.merge(start, each)
    return start


def test_the_rank_is_pending_sent_failed_delivered_read() -> None:
    ranked = sorted(m.Status, key=lambda s: s.rank)
    assert ranked == [m.Status.PENDING, m.Status.SENT, m.Status.FAILED, m.Status.DELIVERED, m.Status.READ]


def test_status_moves_up_and_fills_each_time() -> None:
    result = apply(
        m.Delivery(m.Status.PENDING),
        report(m.Status.SENT, 1),
        report(m.Status.DELIVERED, 2),
        report(m.Status.READ, 3),
    )
    assert result == m.Delivery(m.Status.READ, sent_at=at(1), delivered_at=at(2), read_at=at(3))


def test_status_never_moves_down_but_a_late_report_fills_its_own_time() -> None:
    result = apply(m.Delivery(m.Status.PENDING), report(m.Status.READ, 3), report(m.Status.DELIVERED, 2))
    assert result.status is m.Status.READ
    assert (result.delivered_at, result.read_at) == (at(2), at(3))


def test_read_may_come_without_delivered() -> None:
    result = apply(m.Delivery(m.Status.SENT, sent_at=at(0)), report(m.Status.READ, 5))
    assert result == m.Delivery(m.Status.READ, sent_at=at(0), read_at=at(5))


def test_a_duplicate_keeps_the_first_time_and_equal_times_are_not_duplicates() -> None:
    once = apply(m.Delivery(m.Status.SENT), report(m.Status.DELIVERED, 2))
    assert m.merge(once, report(m.Status.DELIVERED, 9)) == once
    same_second = apply(m.Delivery(m.Status.PENDING), report(m.Status.SENT, 1), report(m.Status.DELIVERED, 1))
    assert same_second == m.Delivery(m.Status.DELIVERED, sent_at=at(1), delivered_at=at(1))


def test_delivered_after_failed_wins_and_keeps_the_failure() -> None:
    failed = apply(m.Delivery(m.Status.SENT), report(m.Status.FAILED, 1, "131026", "undeliverable"))
    result = m.merge(failed, report(m.Status.DELIVERED, 2))
    assert result.status is m.Status.DELIVERED
    assert (result.failed_at, result.error_code, result.error_message) == (at(1), "131026", "undeliverable")


def test_a_duplicate_failed_without_details_never_erases_them() -> None:
    failed = apply(m.Delivery(m.Status.SENT), report(m.Status.FAILED, 1, "131026", "undeliverable"))
    assert m.merge(failed, report(m.Status.FAILED, 4)) == failed
    assert m.merge(failed, report(m.Status.FAILED, 4, "999", "other")) == failed


def test_a_failure_after_a_retry_records_the_new_failure() -> None:
    retried = dataclasses.replace(
        apply(m.Delivery(m.Status.SENT), report(m.Status.FAILED, 1, "1", "first")), status=m.Status.PENDING
    )
    result = m.merge(retried, report(m.Status.FAILED, 7, "2", "second"))
    assert (result.status, result.failed_at, result.error_code, result.error_message) == (
        m.Status.FAILED,
        at(7),
        "2",
        "second",
    )


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_any_order_of_reports_ends_at_the_top_with_every_time(order: tuple[int, ...]) -> None:
    reports = [
        report(m.Status.SENT, 1),
        report(m.Status.FAILED, 2, "x", "y"),
        report(m.Status.DELIVERED, 3),
        report(m.Status.READ, 4),
    ]
    result = apply(m.Delivery(m.Status.PENDING), *(reports[i] for i in order))
    assert result.status is m.Status.READ
    assert (result.sent_at, result.failed_at, result.delivered_at, result.read_at) == (at(1), at(2), at(3), at(4))
    assert (result.error_code, result.error_message) == ("x", "y")


def _message(**overrides: object) -> m.Message:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "conversation_id": uuid.UUID(int=1),
        "whatsapp_message_id": "wamid.1",
        "genesys_message_id": None,
        "direction": m.Direction.INBOUND,
        "status": m.Status.SENT,
        "content": "hello",
        "media_urls": ["https://example.test/a.jpg"],
        "sent_at": T0,
        "delivered_at": None,
        "read_at": None,
        "failed_at": None,
        "error_code": None,
        "error_message": None,
        "retry_count": 0,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return m.Message(**values)  # type: ignore[arg-type]


def _new(**overrides: object) -> m.NewMessage:
    values: dict[str, object] = {
        "conversation_id": uuid.UUID(int=1),
        "direction": m.Direction.INBOUND,
        "whatsapp_message_id": "wamid.1",
        "genesys_message_id": None,
        "status": m.Status.SENT,
        "content": "hello",
        "media_urls": ["https://example.test/a.jpg"],
        "sent_at": at(99),
    }
    values.update(overrides)
    return m.NewMessage(**values)  # type: ignore[arg-type]


def test_a_repeat_is_the_same_message_whatever_its_time_or_status() -> None:
    assert m.same_message(_message(), _new(status=m.Status.PENDING, sent_at=None))
    assert m.same_message(_message(), _new(genesys_message_id="g-1"))  # an id the first record lacked


@pytest.mark.parametrize(
    "change",
    [
        {"content": "hello!"},
        {"media_urls": []},
        {"direction": m.Direction.OUTBOUND},
        {"conversation_id": uuid.UUID(int=2)},
    ],
    ids=["content", "media", "direction", "conversation"],
)
def test_different_content_is_not_a_repeat(change: dict[str, object]) -> None:
    assert not m.same_message(_message(), _new(**change))


def test_a_contradicting_provider_id_is_not_a_repeat() -> None:
    assert not m.same_message(_message(genesys_message_id="g-1"), _new(genesys_message_id="g-2"))


def test_keys_and_reported_statuses_are_checked() -> None:
    assert m.key_of("", "g-7", "genesys_message_id") == m.MessageKey(m.KeyKind.GENESYS, "g-7")
    with pytest.raises(InvalidArgument) as missing:
        m.key_of("", "", None, "requests[3].")
    assert missing.value.field == "requests[3].whatsapp_message_id"
    with pytest.raises(InvalidArgument) as blank:
        m.key_of("   ", "", "whatsapp_message_id")
    assert blank.value.field == "whatsapp_message_id"
    for bad in (None, m.Status.PENDING):
        with pytest.raises(InvalidArgument):
            m.reported_status(bad, "status")


def test_content_and_media_limits() -> None:
    m.content("é" * (m.MAX_CONTENT_BYTES // 2), "content")
    with pytest.raises(InvalidArgument, match="bytes"):
        m.content("é" * (m.MAX_CONTENT_BYTES // 2 + 1), "content")
    with pytest.raises(InvalidArgument) as too_many:
        m.media_urls(["https://x.test/"] * (m.MAX_MEDIA_URLS + 1), "media_urls")
    assert too_many.value.field == "media_urls"
    with pytest.raises(InvalidArgument) as empty:
        m.media_urls(["https://x.test/", ""], "media_urls")
    assert empty.value.field == "media_urls[1]"
