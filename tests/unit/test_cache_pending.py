"""Deferred invalidations (bounded, per tenant) and the pub/sub message format."""

from __future__ import annotations

from statemgr.cache import invalidation
from statemgr.cache.pending import PendingInvalidations


def test_pending_is_grouped_deduplicated_and_bounded() -> None:
    pending = PendingInvalidations(limit=4)
    assert pending.add("sm:{a}:", ["k1", "k2", "k1"]) == 0
    assert pending.add("sm:{b}:", ["k3"]) == 0
    assert pending.add("sm:{b}:", ["k4", "k5", "k6"]) == 2
    assert len(pending) == 4 and pending.dropped == 2
    assert pending.snapshot() == [("sm:{a}:", ["k1", "k2"]), ("sm:{b}:", ["k3", "k4"])]


def test_pending_stays_until_done() -> None:
    pending = PendingInvalidations(limit=10)
    pending.add("sm:{a}:", ["k1", "k2"])
    (prefix, texts) = pending.snapshot()[0]
    pending.add("sm:{a}:", ["k3"])  # arrives while the replay is in flight
    pending.done(prefix, texts)
    assert pending.snapshot() == [("sm:{a}:", ["k3"])] and len(pending) == 1
    pending.done("sm:{a}:", ["k3"])
    pending.done("sm:{zz}:", ["k3"])
    assert pending.snapshot() == [] and len(pending) == 0


def test_messages_round_trip_and_garbage_is_ignored() -> None:
    texts = ["sm:{t}:conv:wa:line\nbreak", 'sm:{t}:cust:phone:+44"']
    assert invalidation.decode(invalidation.encode("me", texts)) == ("me", texts)
    for garbage in (b"", b"not json", b"[]", b'{"o": 1, "k": []}', b'{"o": "x", "k": [1]}', b'{"o": "x"}'):
        assert invalidation.decode(garbage) is None
