"""The Redis circuit breaker: opens after N consecutive failures, lets one probe through later, recovers alone."""

from __future__ import annotations

from statemgr.cache.breaker import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(3, open_seconds=2.0, clock=Clock())
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.success()  # the count starts again
    for _ in range(2):
        breaker.failure()
    assert breaker.state is State.CLOSED and breaker.allow()
    breaker.failure()
    assert breaker.state is State.OPEN and not breaker.allow() and breaker.opens == 1


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    clock = Clock()
    closed: list[bool] = []
    breaker = CircuitBreaker(1, open_seconds=2.0, clock=clock)
    breaker.on_close = lambda: closed.append(True)
    breaker.failure()
    clock.now += 1.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.success()
    assert breaker.state is State.CLOSED and breaker.allow() and closed == [True]


def test_a_failed_probe_opens_it_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(5, open_seconds=2.0, clock=clock)
    for _ in range(5):
        breaker.failure()
    clock.now += 2.0
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is State.OPEN and breaker.opens == 2
    clock.now += 1.0
    assert not breaker.allow()


def test_a_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, open_seconds=1.0, clock=clock)
    breaker.failure()
    clock.now += 1.0
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()
