"""A circuit breaker for Redis: after `failure_threshold` consecutive failures it opens for `open_seconds`,
during which callers skip Redis entirely; then one probe is let through (half-open), whose outcome closes it or
opens it again. So a dead or hung Redis costs each call nothing once the breaker is open, and recovery needs no
operator.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("statemgr.cache")


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Single-threaded (one event loop): `allow` before each call, then exactly one of success, failure, release."""

    __slots__ = ("_clock", "_failures", "_open_seconds", "_open_until", "_probing", "_threshold", "on_close", "opens")

    def __init__(
        self, failure_threshold: int, open_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = max(1, failure_threshold)
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0  # 0: closed
        self._probing = False
        self.opens = 0
        self.on_close: Callable[[], None] | None = None

    @property
    def state(self) -> State:
        if not self._open_until:
            return State.CLOSED
        if self._probing or self._clock() >= self._open_until:
            return State.HALF_OPEN
        return State.OPEN

    def allow(self) -> bool:
        """Whether to try Redis now. When half-open, only the first caller gets through (the probe)."""
        if not self._open_until:
            return True
        if self._probing or self._clock() < self._open_until:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        was_open = bool(self._open_until)
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        if was_open:
            log.info("redis_breaker_closed")
            if self.on_close is not None:
                self.on_close()

    def failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            if not self._open_until or self._probing:
                self.opens += 1
                log.warning("redis_breaker_open", failures=self._failures, open_seconds=self._open_seconds)
            self._open_until = self._clock() + self._open_seconds
        self._probing = False

    def release(self) -> None:
        """The allowed call ended without an outcome (cancelled): let the next caller probe instead."""
        self._probing = False
