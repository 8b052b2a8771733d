"""Which calls the server takes, and which are running: what a graceful stop waits on (docs/operations.md).

gRPC core cancels every call that has reached the server but that the event loop has not yet picked up the moment
shutdown starts (the client sees CANCELLED and cannot tell whether anything happened). So a stop does not start
gRPC's shutdown while calls are still arriving: it first lets the loop pick up and run what clients have already
sent (`settle`), then refuses anything later with UNAVAILABLE before it does anything (`refuse`), and only then
shuts gRPC down. The pools close once every call that started has ended (`idle`).
"""

from __future__ import annotations

import asyncio
import time

from statemgr.domain import errors

QUIET_SECONDS = 0.1  # no new call for this long, over several loop turns: nothing is waiting in gRPC core
_TURN_SECONDS = 0.01
_QUIET_TURNS = 5


class ShuttingDown(errors.Unavailable):
    """The server is shutting down and did nothing with this call; retry it (another replica will answer)."""

    reason = "SHUTTING_DOWN"


class Admission:
    def __init__(self) -> None:
        self.running = 0
        self.refusing = False
        self._last_arrival = 0.0
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self) -> Admission:
        self.begin()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.end()

    def begin(self) -> None:
        """A call arrives; raises ShuttingDown once the server refuses calls."""
        self._last_arrival = time.monotonic()
        if self.refusing:
            raise ShuttingDown()
        self.running += 1
        self._idle.clear()

    def end(self) -> None:
        self.running -= 1
        if self.running == 0:
            self._idle.set()

    def refuse(self) -> None:
        """From now on every new call answers UNAVAILABLE (reason SHUTTING_DOWN) without running."""
        self.refusing = True

    async def settle(self, seconds: float) -> bool:
        """Waits, at most `seconds`, until no call has arrived for QUIET_SECONDS over several loop turns (gRPC hands
        waiting calls over one per turn); True when it did."""
        deadline = time.monotonic() + seconds
        quiet_turns = 0
        while quiet_turns < _QUIET_TURNS or time.monotonic() - self._last_arrival < QUIET_SECONDS:
            if time.monotonic() >= deadline:
                return False
            arrival = self._last_arrival
            await asyncio.sleep(_TURN_SECONDS)
            quiet_turns = quiet_turns + 1 if arrival == self._last_arrival else 0
        return True

    async def idle(self, seconds: float) -> bool:
        """Waits, at most `seconds`, until every call that started has ended; True when they have."""
        try:
            await asyncio.wait_for(self._idle.wait(), max(seconds, 0.0))
        except TimeoutError:
            return False
        return True
