"""Small helpers for the background tasks a server process runs (listeners, leadership, pub/sub)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

# How long one cancellation gets before it is repeated.
_RECANCEL_SECONDS = 0.1


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancels `task` (if any) and waits until it has finished; its own cancellation or failure is not re-raised.

    The cancellation is repeated until the task ends: a library may swallow one (redis-py's pub/sub read under
    asyncio.timeout did, in CI, leaving a server's stop hanging). The caller's own cancellation still propagates.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=_RECANCEL_SECONDS)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as lost; whoever cared has logged it


async def cancel_and_wait_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """cancel_and_wait for each of `tasks`, at the same time."""
    await asyncio.gather(*(cancel_and_wait(task) for task in tasks))
