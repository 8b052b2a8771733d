"""In-process coalescing of concurrent misses: one load per key at a time, concurrent readers share it.

A reader shares a load only if the load's database read begins after the reader began: the load read the same
generation from Redis as the reader (no invalidation in between), or it has not called its loader yet. So a reader
never gets a row read before a write that had returned before the reader began (docs/caching.md).

A flight runs in its own task, so a caller that gives up (a cancelled RPC) neither cancels the load for the others
nor leaves them without an answer. An invalidation detaches the key's flight and marks it stale: readers that
arrive after the write start a new load (so they see the write), and the stale flight's result is returned to the
readers that were already waiting (their reads overlapped the write) but is not stored in any tier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from statemgr import tasks

Value = bytes | None


class Flight:
    """One load in progress."""

    __slots__ = ("begun", "generation", "stale", "task")

    def __init__(self, generation: bytes | None) -> None:
        self.stale = False
        self.begun = False  # the loader has been called
        self.generation = generation  # the key's generation in Redis when the load was decided; None: not known
        self.task: asyncio.Task[Value] | None = None


class SingleFlight:
    __slots__ = ("_flights", "_running")

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}
        self._running: set[asyncio.Task[Value]] = set()  # detached flights too, so `cancel_all` reaches them

    def joinable(self, key: str, generation: bytes | None) -> asyncio.Task[Value] | None:
        """The load of `key` in progress that a reader who saw `generation` (None: Redis not read) may share."""
        flight = self._flights.get(key)
        if flight is None:
            return None
        if not flight.begun or (generation is not None and flight.generation == generation):
            return flight.task
        return None

    def start(
        self, key: str, generation: bytes | None, run: Callable[[Flight], Coroutine[Any, Any, Value]]
    ) -> asyncio.Task[Value]:
        """Starts loading `key` in a new task running `run(flight)`; it replaces (detaches) any earlier flight."""
        flight = self._flights[key] = Flight(generation)
        flight.task = task = asyncio.create_task(run(flight))
        self._running.add(task)
        task.add_done_callback(self._done)
        return task

    def finish(self, key: str, flight: Flight) -> None:
        """Called by the flight itself when its load is over."""
        if self._flights.get(key) is flight:
            del self._flights[key]

    def forget(self, keys: Iterable[str]) -> None:
        """Detaches and marks stale the flights of `keys` (they were invalidated)."""
        pop = self._flights.pop
        for key in keys:
            flight = pop(key, None)
            if flight is not None:
                flight.stale = True

    def forget_all(self) -> None:
        for flight in self._flights.values():
            flight.stale = True
        self._flights.clear()

    def __len__(self) -> int:
        return len(self._flights)

    async def cancel_all(self) -> None:
        self.forget_all()
        await tasks.cancel_and_wait_all(list(self._running))

    def _done(self, task: asyncio.Task[Value]) -> None:
        self._running.discard(task)
        # Every waiter may have gone away (cancelled RPCs): retrieve the outcome so asyncio does not log it as lost.
        if not task.cancelled():
            task.exception()
