"""Settling a batch of publishes from the broker's confirms: acks (single and multiple), nacks, returns, losses."""

from __future__ import annotations

import asyncio

from statemgr.events.publisher import Outgoing, _Batch


def message(n: int) -> Outgoing:
    return Outgoing(key=100 + n, message_id=f"id-{n}", routing_key="t.x", type="x", body=b"", timestamp=0)


async def batch_of(count: int) -> _Batch:
    batch = _Batch(asyncio.get_running_loop())
    for n in range(1, count + 1):
        batch.pending[n] = message(n)
    return batch


async def test_multiple_ack_settles_every_tag_up_to_it() -> None:
    batch = await batch_of(5)
    batch.settle(3, multiple=True, nack=False)
    assert not batch.done.done()
    batch.settle(5, multiple=False, nack=False)
    batch.settle(4, multiple=False, nack=False)
    assert batch.done.done()
    outcome = batch.outcome()
    assert sorted(outcome.confirmed) == [101, 102, 103, 104, 105] and not outcome.failed and not outcome.returned


async def test_returned_and_nacked_and_unconfirmed_are_told_apart() -> None:
    batch = await batch_of(4)
    batch.returned.add("id-2")  # Basic.Return arrives before the Basic.Ack of the same message
    batch.settle(2, multiple=True, nack=False)
    batch.settle(3, multiple=False, nack=True)
    outcome = batch.outcome()  # tag 4: the connection was lost before its confirm
    assert outcome.confirmed == [101] and outcome.returned == [102]
    assert sorted(outcome.failed) == [103, 104]
    assert not batch.done.done()


async def test_unknown_and_repeated_tags_are_ignored() -> None:
    batch = await batch_of(1)
    batch.settle(9, multiple=False, nack=False)
    batch.settle(1, multiple=False, nack=False)
    batch.settle(1, multiple=False, nack=True)
    assert batch.outcome().confirmed == [101] and batch.done.done()
