"""The graceful stop's bookkeeping: calls still arriving hold the stop back; once refusing, calls answer
UNAVAILABLE (SHUTTING_DOWN) before they run; the pools wait until every started call has ended."""

from __future__ import annotations

import asyncio
import time

import pytest

from statemgr.api import status
from statemgr.api.admission import QUIET_SECONDS, Admission, ShuttingDown
from statemgr.domain import errors


async def test_settle_waits_while_calls_keep_arriving() -> None:
    admission = Admission()

    async def arrivals() -> None:
        for _ in range(10):
            with admission:
                await asyncio.sleep(0.03)

    arriving = asyncio.create_task(arrivals())
    started = time.monotonic()
    assert await admission.settle(5.0)
    assert arriving.done(), "settled while calls were still arriving"
    assert time.monotonic() - started >= 0.27 + QUIET_SECONDS * 0.9  # the last call arrived at 0.27 s


async def test_settle_gives_up_at_its_bound() -> None:
    admission = Admission()

    async def steady() -> None:
        while True:
            with admission:
                await asyncio.sleep(0.005)

    arriving = asyncio.create_task(steady())
    try:
        started = time.monotonic()
        assert not await admission.settle(0.2)
        assert time.monotonic() - started < 0.5
    finally:
        arriving.cancel()


async def test_a_refusing_admission_answers_shutting_down_and_counts_nothing() -> None:
    admission = Admission()
    admission.refuse()
    with pytest.raises(ShuttingDown) as refused:
        admission.begin()
    assert admission.running == 0
    assert status.code_of(refused.value) == status.code_of(errors.Unavailable())
    assert refused.value.reason == "SHUTTING_DOWN"


async def test_idle_waits_for_the_calls_that_started() -> None:
    admission = Admission()
    admission.begin()
    assert not await admission.idle(0.05)
    asyncio.get_running_loop().call_later(0.05, admission.end)
    assert await admission.idle(1.0)
    assert admission.running == 0


def test_an_unknown_commit_outcome_is_aborted_not_unavailable() -> None:
    exc = errors.CommitOutcomeUnknown()
    assert status.code_of(exc) == status.code_of(errors.Aborted())
    assert status.to_status_proto(exc).code != status.code_of(errors.Unavailable())
