"""Batched Redis reads: the reads a process starts in one turn of its event loop share one MGET.

Each read asks for its value and its generation key. A read only ever joins a batch that has not been sent yet,
so whatever a batch answers was read from Redis after every one of its readers began: a write whose invalidation
finished before a read began is always seen by it (docs/caching.md, "Read after write").

One round trip and one reply parse for many reads: under concurrency the Redis part of a cached lookup costs a
share of one command instead of one command each (redis-py spends tens of microseconds of CPU per command). At most
`_IN_FLIGHT` batches are out at once; reads arriving meanwhile form the next batch, sent when one comes back. So a
busy process sends fewer, larger batches over a few warm connections rather than opening more.
"""

from __future__ import annotations

import asyncio
from typing import Any

from statemgr import tasks
from statemgr.cache import keys
from statemgr.cache.redis_tier import RedisTier

Fetched = tuple[bytes | None, bytes]
"""(value or None, generation; b"" when the key has none)."""

_Waiter = tuple[str, "asyncio.Future[Fetched | None]"]
_IN_FLIGHT = 2


class ReadBatcher:
    __slots__ = ("_batch", "_batch_sender", "_redis", "_sending")

    def __init__(self, redis: RedisTier) -> None:
        self._redis = redis
        self._batch: list[_Waiter] | None = None  # the next batch, not sent yet
        self._batch_sender = False  # a task is about to send it
        self._sending: set[asyncio.Task[None]] = set()

    def fetch(self, text: str) -> asyncio.Future[Fetched | None]:
        """The value and generation of `text`, read by the next batch; None if Redis could not answer in time."""
        future: asyncio.Future[Fetched | None] = asyncio.get_running_loop().create_future()
        if self._batch is None:
            self._batch = []
        self._batch.append((text, future))
        self._launch()
        return future

    def _launch(self) -> None:
        """Starts a task to send the next batch, unless one is about to or enough are out already."""
        if self._batch_sender or self._batch is None or len(self._sending) >= _IN_FLIGHT:
            return
        self._batch_sender = True
        # The task's first step runs after the reads already scheduled in this loop turn: they join the batch.
        task = asyncio.create_task(self._send())
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled():
            self._launch()  # the reads that came while enough batches were out

    async def close(self) -> None:
        await tasks.cancel_and_wait_all(list(self._sending))
        batch, self._batch = self._batch or [], None
        _answer(batch, None)  # never sent: its readers go to their loaders

    async def _send(self) -> None:
        batch, self._batch, self._batch_sender = self._batch or [], None, False
        if not batch:
            return
        names: list[str] = []
        for text, _ in batch:
            names.append(text)
            names.append(keys.generation(text))
        reply: list[Any] | None = None
        try:
            reply = await self._redis.mget(names)
        finally:
            _answer(batch, reply)


def _answer(batch: list[_Waiter], reply: list[Any] | None) -> None:
    for i, (_, future) in enumerate(batch):
        if future.done():  # its reader was cancelled
            continue
        if reply is None:
            future.set_result(None)
        else:
            future.set_result((reply[2 * i], reply[2 * i + 1] or b""))
