"""cancel_and_wait ends a background task even when the task swallows a cancellation."""

from __future__ import annotations

import asyncio

from statemgr import tasks


async def test_a_task_that_swallows_one_cancellation_still_ends() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed >= 3:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.cancel_and_wait(task), timeout=5)
    assert task.cancelled() and swallowed == 3


async def test_a_failed_or_finished_task_is_not_reraised() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    failed = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await tasks.cancel_and_wait(failed)
    await tasks.cancel_and_wait(None)
    assert failed.done()


async def test_the_callers_own_cancellation_propagates() -> None:
    release = asyncio.Event()

    async def ignores_cancellation() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                pass

    stubborn = asyncio.create_task(ignores_cancellation())
    await asyncio.sleep(0)
    caller = asyncio.create_task(tasks.cancel_and_wait(stubborn))
    await asyncio.sleep(0.05)
    caller.cancel()
    done, _ = await asyncio.wait([caller], timeout=5)
    assert caller in done and caller.cancelled()
    release.set()
    await stubborn
