"""Open- and closed-loop load generation on asyncio, recorded into HdrHistograms.

A workload is an async callable ``call(i)``; ``i`` counts calls from 0 within one run (a workload that needs keys
unique across runs keeps its own counter). Errors are counted by gRPC status code (or exception type), never
raised. Latencies are recorded in microseconds, 1 us to 60 s, 3 significant digits.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import grpc
from hdrh.histogram import HdrHistogram

from bench import procfs

if TYPE_CHECKING:
    from bench.targets import Target

Call = Callable[[int], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Usage:
    """Counters of the processes a case exercises, read before and after each run, outside the timed window: CPU
    seconds so far of the processes that answer calls, of the PostgreSQL backends, of the background process (the
    relay and the other duties), and the events it has published; each None when unknown."""

    server: float | None = None
    pg: float | None = None
    background: float | None = None
    events: float | None = None

    def since(self, before: Usage) -> Usage:
        """What was used between ``before`` and this reading."""

        def delta(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else b - a

        return Usage(*(delta(getattr(before, f.name), getattr(self, f.name)) for f in dataclasses.fields(self)))


Probe = Callable[[], Awaitable[Usage]]
DEFAULT_RATE = 500.0
MODES = ("open", "closed")

_LOWEST_US = 1
_HIGHEST_US = 60_000_000
_SIGNIFICANT_DIGITS = 3
# asyncio sleeps through epoll, whose timeout is rounded *up* to a whole millisecond: a sleep until a call's
# slot wakes up to 1 ms late, which at 500 calls/s would add ~0.6 ms to every p50. So the open loop wakes up to
# this much early and sends what falls due within it; a call that leaves early is timed from when it left.
_TIMER_SLACK_S = 0.001


@dataclasses.dataclass(frozen=True)
class Case:
    """One workload to measure, and the name of the case its figures are divided by (if any).

    ``rpcs`` is how many RPCs one call makes; ``rate`` is the open loop's RPCs per second (None: DEFAULT_RATE),
    so such a case runs at ``rate / rpcs`` calls per second. ``modes`` says which loops to run; ``targets`` are
    what the figures are judged against (bench.targets); ``probe`` reads the CPU time of the processes it drives.
    """

    name: str
    floor: str | None
    description: str
    call: Call
    rpcs: int = 1
    rate: float | None = None
    modes: tuple[str, ...] = MODES
    targets: tuple[Target, ...] = ()
    probe: Probe | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """How long and how hard to drive one workload."""

    duration_s: float
    warmup_s: float
    rate: float | None  # open-loop RPCs per second for every case; None: each case's own rate
    concurrency: int
    max_outstanding: int

    def rpc_rate(self, case: Case) -> float:
        """The open-loop RPC rate of ``case`` under this plan."""
        return self.rate or case.rate or DEFAULT_RATE


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
    error_samples: dict[str, str]
    unsent: int
    achieved_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    send_lag_p99_ms: float | None
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    pg_cpu_s: float | None = None
    machine_cpu_s: float | None = None
    background_cpu_s: float | None = None  # the background process: relay, pruner (statemgr serve's parent)
    events: float | None = None  # events the relay published meanwhile

    @property
    def rest_cpu_s(self) -> float | None:
        """What the rest of the machine used meanwhile: other processes (other engineers' tests), PostgreSQL's
        and Redis's own work, the kernel."""
        if self.machine_cpu_s is None:
            return None
        ours = self.client_cpu_s + (self.server_cpu_s or 0.0) + (self.pg_cpu_s or 0.0) + (self.background_cpu_s or 0.0)
        return max(0.0, self.machine_cpu_s - ours)

    @property
    def error_count(self) -> int:
        """All failed calls, whatever their code."""
        return sum(self.errors.values())


def _histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT_DIGITS)


def _record(histogram: HdrHistogram, seconds: float) -> None:
    histogram.record_value(min(max(int(seconds * 1_000_000), _LOWEST_US), _HIGHEST_US))


class _Recorder:
    """Collects latencies, send lags and errors of one run."""

    def __init__(self) -> None:
        self.latency = _histogram()
        self.lag = _histogram()
        self.errors: collections.Counter[str] = collections.Counter()
        self.samples: dict[str, str] = {}
        self.ok = 0

    async def timed(self, call: Call, i: int, slot: float | None) -> None:
        """Awaits ``call(i)``; records its latency from ``slot`` (a perf_counter reading) or, if it left before
        its slot or has none (closed loop), from when it left."""
        sent = time.perf_counter()
        since = sent
        if slot is not None:
            since = min(slot, sent)
            _record(self.lag, max(0.0, sent - slot))
        try:
            await call(i)
        except grpc.aio.AioRpcError as exc:
            self._failed(exc.code().name, exc.details() or "")
            return
        except Exception as exc:  # a benchmark counts failures, it does not stop on them
            self._failed(type(exc).__name__, str(exc))
            return
        _record(self.latency, time.perf_counter() - since)
        self.ok += 1

    def _failed(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.samples.setdefault(kind, detail[:200])

    def result(self, name: str, mode: str, rate: float | None, concurrency: int | None, elapsed: float) -> Result:
        def ms(percentile: float) -> float:
            return self.latency.get_value_at_percentile(percentile) / 1000.0 if self.ok else 0.0

        lagged = self.lag.get_total_count() > 0
        return Result(
            name=name,
            mode=mode,
            target_rate=rate,
            concurrency=concurrency,
            elapsed_s=elapsed,
            ok=self.ok,
            errors=dict(self.errors),
            error_samples=dict(self.samples),
            unsent=0,
            achieved_rate=self.ok / elapsed if elapsed > 0 else 0.0,
            p50_ms=ms(50),
            p95_ms=ms(95),
            p99_ms=ms(99),
            max_ms=self.latency.get_max_value() / 1000.0 if self.ok else 0.0,
            send_lag_p99_ms=self.lag.get_value_at_percentile(99) / 1000.0 if lagged else None,
        )


async def run_open(name: str, call: Call, rate: float, duration_s: float, max_outstanding: int) -> Result:
    """Sends ``rate`` calls per second for ``duration_s``, each in its time slot, without waiting for replies.

    Latency runs from the call's *scheduled* slot, so a stall in the server or in this loop shows up as latency
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
        due = min(total, int((time.perf_counter() + _TIMER_SLACK_S - start) / interval) + 1)
        for i in range(sent_upto, due):
            if len(in_flight) >= max_outstanding:
                unsent += 1
                continue
            task = asyncio.create_task(recorder.timed(call, i, start + i * interval))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        sent_upto = due
        if sent_upto < total:
            await asyncio.sleep(max(0.0, start + sent_upto * interval - _TIMER_SLACK_S - time.perf_counter()))
    if in_flight:
        await asyncio.wait(set(in_flight))
    elapsed = max(duration_s, time.perf_counter() - start)
    return dataclasses.replace(recorder.result(name, "open", rate, None, elapsed), unsent=unsent)


async def run_closed(name: str, call: Call, concurrency: int, duration_s: float) -> Result:
    """Runs ``concurrency`` workers, each calling back to back until ``duration_s`` has passed: max throughput."""
    recorder = _Recorder()
    counter = itertools.count()
    start = time.perf_counter()
    deadline = start + duration_s

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await recorder.timed(call, next(counter), None)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return recorder.result(name, "closed", None, concurrency, time.perf_counter() - start)


async def _run(case: Case, mode: str, plan: Plan) -> Result:
    """One run in one mode, with the CPU time the generator, the server and PostgreSQL spent on it."""
    before = await case.probe() if case.probe else Usage()
    machine = procfs.machine_busy_seconds()
    cpu = time.process_time()
    if mode == "open":
        rate = plan.rpc_rate(case) / case.rpcs
        result = await run_open(case.name, case.call, rate, plan.duration_s, plan.max_outstanding)
    else:
        result = await run_closed(case.name, case.call, plan.concurrency, plan.duration_s)
    cpu = time.process_time() - cpu
    machine_after = procfs.machine_busy_seconds()
    used = (await case.probe() if case.probe else Usage()).since(before)
    busy = None if machine is None or machine_after is None else machine_after - machine
    return dataclasses.replace(
        result,
        client_cpu_s=cpu,
        server_cpu_s=used.server,
        pg_cpu_s=used.pg,
        machine_cpu_s=busy,
        background_cpu_s=used.background,
        events=used.events,
    )


async def measure(case: Case, plan: Plan) -> list[Result]:
    """Warms up, then measures open loop at ``plan.rpc_rate(case) / case.rpcs`` calls per second and closed loop
    (max throughput), or whichever of the two ``case.modes`` names.

    The open loop goes first so that what a saturating closed loop leaves behind (autovacuum, a checkpoint)
    does not land in the latency figures at moderate load.
    """
    if plan.warmup_s > 0:
        await run_closed(case.name, case.call, plan.concurrency, plan.warmup_s)
    return [await _run(case, mode, plan) for mode in MODES if mode in case.modes]
