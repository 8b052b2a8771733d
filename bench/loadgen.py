"""Open- and closed-loop load generation on asyncio, recorded into HdrHistograms.

A workload is an async callable ``call(i)``; ``i`` counts calls from 0 within one run. Errors are counted by
gRPC status code (or exception type), never raised. Latencies are recorded in microseconds, 1 us to 60 s,
3 significant digits.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable

import grpc
from hdrh.histogram import HdrHistogram

Call = Callable[[int], Awaitable[None]]

_LOWEST_US = 1
_HIGHEST_US = 60_000_000
_SIGNIFICANT_DIGITS = 3


@dataclasses.dataclass(frozen=True)
class Case:
    """One workload to measure, and the name of the case its figures are divided by (if any)."""

    name: str
    floor: str | None
    description: str
    call: Call


@dataclasses.dataclass(frozen=True)
class Plan:
    """How long and how hard to drive one workload."""

    duration_s: float
    warmup_s: float
    rate: float
    concurrency: int
    max_outstanding: int


@dataclasses.dataclass(frozen=True)
class Result:
    """The figures of one run of one workload in one mode."""

    name: str
    mode: str
    target_rate: float | None
    concurrency: int | None
    elapsed_s: float
    ok: int
    errors: dict[str, int]
    unsent: int
    achieved_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def error_count(self) -> int:
        """All failed calls, whatever their code."""
        return sum(self.errors.values())


class _Recorder:
    """Collects latencies and errors of one run."""

    def __init__(self) -> None:
        self.histogram = HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT_DIGITS)
        self.errors: collections.Counter[str] = collections.Counter()
        self.ok = 0

    async def timed(self, call: Call, i: int, since: float) -> None:
        """Awaits ``call(i)`` and records the time from ``since`` (a perf_counter reading) to its completion."""
        try:
            await call(i)
        except grpc.aio.AioRpcError as exc:
            self.errors[exc.code().name] += 1
            return
        except Exception as exc:  # a benchmark counts failures, it does not stop on them
            self.errors[type(exc).__name__] += 1
            return
        micros = int((time.perf_counter() - since) * 1_000_000)
        self.histogram.record_value(min(max(micros, _LOWEST_US), _HIGHEST_US))
        self.ok += 1

    def result(
        self, name: str, mode: str, rate: float | None, concurrency: int | None, elapsed: float, unsent: int
    ) -> Result:
        def ms(percentile: float) -> float:
            return self.histogram.get_value_at_percentile(percentile) / 1000.0 if self.ok else 0.0

        return Result(
            name=name,
            mode=mode,
            target_rate=rate,
            concurrency=concurrency,
            elapsed_s=elapsed,
            ok=self.ok,
            errors=dict(self.errors),
            unsent=unsent,
            achieved_rate=self.ok / elapsed if elapsed > 0 else 0.0,
            p50_ms=ms(50),
            p95_ms=ms(95),
            p99_ms=ms(99),
            max_ms=self.histogram.get_max_value() / 1000.0 if self.ok else 0.0,
        )


async def run_open(name: str, call: Call, rate: float, duration_s: float, max_outstanding: int) -> Result:
    """Sends ``rate`` calls per second for ``duration_s``, each at its scheduled time, without waiting for replies.

    Latency runs from the *scheduled* send time, so a stall in the server or in this loop shows up as latency
    instead of silently lowering the send rate (no coordinated omission). At most ``max_outstanding`` calls are
    in flight; a call due while that many are outstanding is not sent and is counted as unsent.
    """
    recorder = _Recorder()
    total = max(1, int(rate * duration_s))
    interval = 1.0 / rate
    in_flight: set[asyncio.Task[None]] = set()
    unsent = 0
    start = time.perf_counter()
    sent_upto = 0
    while sent_upto < total:
        due = min(total, int((time.perf_counter() - start) / interval) + 1)
        for i in range(sent_upto, due):
            if len(in_flight) >= max_outstanding:
                unsent += 1
                continue
            task = asyncio.create_task(recorder.timed(call, i, start + i * interval))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        sent_upto = due
        if sent_upto < total:
            await asyncio.sleep(max(0.0, start + sent_upto * interval - time.perf_counter()))
    if in_flight:
        await asyncio.wait(set(in_flight))
    elapsed = max(duration_s, time.perf_counter() - start)
    return recorder.result(name, "open", rate, None, elapsed, unsent)


async def run_closed(name: str, call: Call, concurrency: int, duration_s: float) -> Result:
    """Runs ``concurrency`` workers, each calling back to back until ``duration_s`` has passed: max throughput."""
    recorder = _Recorder()
    counter = itertools.count()
    start = time.perf_counter()
    deadline = start + duration_s

    async def worker() -> None:
        while (now := time.perf_counter()) < deadline:
            await recorder.timed(call, next(counter), now)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return recorder.result(name, "closed", None, concurrency, elapsed, 0)


async def measure(name: str, call: Call, plan: Plan) -> list[Result]:
    """Warms up, then measures closed loop (max throughput) and open loop at ``plan.rate``."""
    if plan.warmup_s > 0:
        await run_closed(name, call, plan.concurrency, plan.warmup_s)
    closed = await run_closed(name, call, plan.concurrency, plan.duration_s)
    opened = await run_open(name, call, plan.rate, plan.duration_s, plan.max_outstanding)
    return [opened, closed]
