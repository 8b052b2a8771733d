"""The statemgr part of a run: which scenarios run on which server, and the targets they are held to.

By default the bench runs its own servers on a throwaway database (bench.statemgr_server), one phase each:

- ``statemgr serve --workers 1`` at log level warning: every scenario, open loop at its rate and closed loop;
  the latency targets and the floor ratios are judged here (one process, as the floor server is one process);
- the same at log level info (one JSON line per RPC): the cached lookup again, so the cost of logging shows;
- ``statemgr serve --workers 2``: the closed-loop maxima the issue sets for two workers.

With ``--target`` the first phase's scenarios run against that server instead (no memory, no CPU of its own).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator, Sequence

import grpc
import psycopg

from bench import procfs, report, statemgr_server, targets
from bench.floor import Floors, measure_into
from bench.loadgen import MODES, Case, Plan, Probe
from bench.scenarios import SCENARIOS, Context
from bench.statemgr_server import Config

MEMORY_LIMIT_MB = 150.0
# The most calls per second a scenario is assumed to reach in a closed loop, to size the data its setup prepares
# (update-message-status records a third as many messages as the calls it expects). Beyond it: PoolExhausted.
CLOSED_CEILING = 1_500.0
CHANNELS_PER_WORKER = 4
WRITE = (targets.p50_vs_floor(1.25), targets.max_vs_floor(0.8))


@dataclasses.dataclass(frozen=True)
class Item:
    """A scenario in a phase: which loops, held to which targets."""

    scenario: str
    modes: tuple[str, ...] = MODES
    targets: tuple[targets.Target, ...] = ()


@dataclasses.dataclass(frozen=True)
class Phase:
    """One server configuration and what runs on it; ``suffix`` marks its case names (the first has none)."""

    suffix: str
    config: Config
    items: tuple[Item, ...]


PHASES = (
    Phase(
        "",
        Config(workers=1),
        (
            Item("statemgr-noop"),
            Item("lookup-conversation", targets=(targets.p95(1.5), targets.p50_vs_floor(1.3))),
            Item("create-conversation", targets=(targets.p95(3), *WRITE)),
            Item("update-message-status", targets=(targets.p95(3), *WRITE)),
            Item("resolve-inbound", targets=(targets.p95(5), *WRITE)),
            Item("message-tracking", targets=WRITE),
        ),
    ),
    Phase(" [log info]", Config(workers=1, log_level="info"), (Item("lookup-conversation"),)),
    Phase(
        " [2 workers]",
        Config(workers=2),
        (
            Item("statemgr-noop", ("closed",)),
            Item("lookup-conversation", ("closed",), (targets.max_rate(4_000),)),
            Item("resolve-inbound", ("closed",), (targets.max_rate(1_000),)),
        ),
    ),
)

SERVER_NOTES = (
    "statemgr runs as a real `statemgr serve --workers N` subprocess (`python -m statemgr.cli serve`) on a"
    " throwaway database created through STATEMGR_BENCH_PG_URL and migrated, dropped at the end. Rows without a"
    " suffix: `--workers 1` (one process, like the floor server), which is where latency targets and floor ratios"
    " are judged; `[2 workers]`: `--workers 2` (a supervisor and two worker processes sharing the port through"
    " SO_REUSEPORT), for the issue's two-worker maxima; the generator holds "
    f"{CHANNELS_PER_WORKER} connections on each worker, placed by checking in /proc which worker accepted each.",
    "Server settings: STATEMGR_AMQP_URL empty (no RabbitMQ: events are written to PostgreSQL's outbox and event"
    " log only, nothing is relayed), STATEMGR_METRICS_LISTEN empty, STATEMGR_REDIS_URL"
    f" {statemgr_server.REDIS_URL} (flushed before each server starts and after it stops), a random admin key, and"
    " STATEMGR_LOG_LEVEL=warning: at info the service writes one JSON line per RPC, which would dominate the"
    " cheap calls; the `[log info]` rows measure the lookup with it on (output to a file) to show that cost.",
)


def _expected_calls(rate: float, item: Item, plan: Plan) -> int:
    """An upper estimate of the calls a case gets: its open loop, its warm-up and its closed loop."""
    calls = plan.warmup_s * CLOSED_CEILING
    if "open" in item.modes:
        calls += rate * plan.duration_s
    if "closed" in item.modes:
        calls += CLOSED_CEILING * plan.duration_s
    return int(calls) + 1


@dataclasses.dataclass(frozen=True)
class _Where:
    """What a phase's cases are measured through."""

    channels: Sequence[grpc.aio.Channel]
    admin_key: str
    probe: Probe | None


async def _measure(run: report.Run, phase: Phase, plan: Plan, where: _Where, floors: Floors) -> None:
    for item in phase.items:
        scenario = SCENARIOS[item.scenario]
        calls = _expected_calls((plan.rate or scenario.rate) / scenario.rpcs, item, plan)
        case = Case(
            scenario.name + phase.suffix,
            scenario.floor,
            scenario.description,
            await scenario.setup(Context(where.channels, where.admin_key, calls)),
            rpcs=scenario.rpcs,
            rate=scenario.rate,
            modes=item.modes,
            targets=item.targets,
            probe=where.probe,
        )
        run.cases.append(case)
        await floors.before(case.floor)
        await measure_into(run, case, plan)


async def against(target: str, admin_key: str, plan: Plan, run: report.Run, floors: Floors) -> None:
    """The first phase's scenarios against a server someone else runs."""
    print(f"scenarios against {target}:", file=sys.stderr)
    run.facts["statemgr server"] = f"{target} (external: its configuration is not known here)"
    async with grpc.aio.insecure_channel(target) as channel:
        await _measure(run, PHASES[0], plan, _Where([channel], admin_key, None), floors)


async def own(plan: Plan, run: report.Run, floors: Floors) -> None:
    """Every phase, each on a server of its own, on one throwaway database."""
    async with statemgr_server.database() as db, _admin(db) as admin:
        run.notes.extend(SERVER_NOTES)
        for phase in PHASES:
            await _phase(run, phase, plan, db, admin, floors)


@contextlib.asynccontextmanager
async def _admin(db: statemgr_server.Database) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    async with await psycopg.AsyncConnection.connect(db.admin_url, autocommit=True) as conn:
        yield conn


async def _phase(
    run: report.Run,
    phase: Phase,
    plan: Plan,
    db: statemgr_server.Database,
    admin: psycopg.AsyncConnection[tuple[object, ...]],
    floors: Floors,
) -> None:
    config = phase.config
    label = f"statemgr serve --workers {config.workers}, log level {config.log_level}"
    print(f"scenarios on {label}:", file=sys.stderr)
    run.facts[f"load average before {label}"] = report.load_average()
    async with statemgr_server.running(db, config) as server:
        async with statemgr_server.channels(server, CHANNELS_PER_WORKER) as channels:
            where = _Where(channels, server.admin_key, server.probe(admin, db))
            await _measure(run, phase, plan, where, floors)
        workers = server.workers()
        for n, pid in enumerate(workers, start=1):
            name = f"{label}: worker {n} of {len(workers)}" if config.workers > 1 else label
            run.memory.append(report.Memory(name, pid, procfs.rss_mb(pid), MEMORY_LIMIT_MB))
    run.facts[f"exit code of {label}"] = f"{server.exit_code} after SIGTERM"
