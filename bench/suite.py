"""The statemgr part of a run: which scenarios run on which server, and the targets they are held to.

By default the bench runs its own servers on a throwaway database (bench.statemgr_server), one phase each, in the
configuration operators run unless a phase says otherwise: relaying to RabbitMQ with confirms (an exchange and
queue of the run's own, bench.broker), metrics on, log level warning:

- ``statemgr serve --workers 1``: every scenario, open loop at its rate and closed loop; the latency, CPU and
  throughput targets and the floor ratios are judged here;
- ``statemgr serve --workers 2``: the closed loops again, each compared with its one-worker figure;
- ``[stripped]``, a diagnostic: ``--workers 1`` with no relay and no metrics, lookups over 100 ids, as the bench
  measured before; it shows what the production configuration costs, and is held to no target.

With ``--target`` the first phase's scenarios run against that server instead (no memory, no CPU of its own).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator, Sequence

import grpc
import psycopg

from bench import broker, procfs, report, statemgr_server, targets
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
    """A scenario in a phase: which loops, held to which targets, compared with which case (default: its floor)."""

    scenario: str
    modes: tuple[str, ...] = MODES
    targets: tuple[targets.Target, ...] = ()
    compare_to: str | None = None


@dataclasses.dataclass(frozen=True)
class Phase:
    """One server configuration and what runs on it; ``suffix`` marks its case names (the first has none).
    ``relay``: the server publishes to this run's RabbitMQ exchange."""

    suffix: str
    config: Config
    items: tuple[Item, ...]
    relay: bool = True


# The figures for the production configuration, one worker.
LOOKUP = (targets.cpu(0.35), targets.p50(0.8), targets.max_rate(2_500))
STATUS = (targets.cpu(0.7), targets.p50(2), targets.max_rate(1_000))
INBOUND_NEW = (targets.cpu(1.5), targets.p95(10), targets.max_rate(500))
SCALES = (targets.max_vs_floor(1.3),)  # two workers against one


def _two_workers(scenario: str) -> Item:
    return Item(scenario, ("closed",), SCALES, compare_to=scenario)


PHASES = (
    Phase(
        "",
        Config(workers=1),
        (
            Item("statemgr-noop"),
            Item("lookup-5k", targets=LOOKUP),
            Item("lookup-5k-skewed"),
            Item("create-conversation", targets=(targets.p95(3), *WRITE)),
            Item("update-message-status", targets=(targets.p95(3), *STATUS, *WRITE)),
            Item("resolve-inbound-new", targets=INBOUND_NEW),
            Item("message-tracking", targets=WRITE),
        ),
    ),
    Phase(
        " [2 workers]",
        Config(workers=2),
        tuple(
            _two_workers(name)
            for name in ("lookup-5k", "lookup-5k-skewed", "update-message-status", "resolve-inbound-new")
        ),
    ),
    Phase(  # where the relay ran before the background process: in the interpreter that answers the calls
        " [relay in-process]",
        Config(workers=0),
        (Item("update-message-status"), Item("resolve-inbound-new")),
    ),
    Phase(
        " [stripped]",
        Config(workers=1, metrics=False),
        (Item("lookup-conversation"), Item("update-message-status"), Item("resolve-inbound")),
        relay=False,
    ),
)

SERVER_NOTES = (
    "statemgr runs as a real `statemgr serve --workers N` subprocess (`python -m statemgr.cli serve`: a background"
    " process running the relay and the other leader duties, parent of N gRPC worker processes) on a throwaway"
    " database created through STATEMGR_BENCH_PG_URL and migrated, dropped at the end. Rows without a suffix:"
    " `--workers 1`, where the targets are judged; `[2 workers]`: `--workers 2` (sharing the port through"
    " SO_REUSEPORT), compared with the one-worker rows; the generator holds "
    f"{CHANNELS_PER_WORKER} connections on each worker, placed by checking in /proc which worker accepted each.",
    "Server settings (production): STATEMGR_AMQP_URL set (the relay publishes every event to an exchange of this"
    " run with publisher confirms; a queue bound to `#` keeps them routable), STATEMGR_METRICS_LISTEN on free"
    f" ports, STATEMGR_REDIS_URL {statemgr_server.REDIS_URL} (flushed before each server starts and after it stops),"
    " a random admin key, STATEMGR_LOG_LEVEL=warning. `[relay in-process]` rows: `--workers 0`, one process that"
    " answers the calls and runs the relay, as every process did before the background process existed: its srv"
    " CPU per call against the one-worker rows' is what moving the relay out saved the calls' interpreter."
    " `[stripped]` rows: no relay (STATEMGR_AMQP_URL empty: events"
    " stay in PostgreSQL), no metrics, lookups over 100 ids: the configuration the bench used to measure, kept as a"
    " diagnostic and held to no target.",
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
            item.compare_to or scenario.floor,
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
    """Every phase, each on a server of its own, on one throwaway database and one RabbitMQ exchange."""
    async with statemgr_server.database() as db, _admin(db) as admin, broker.exchange() as exchange:
        run.notes.extend(SERVER_NOTES)
        run.facts["rabbitmq exchange"] = f"{exchange.exchange} (deleted at the end)"
        for phase in PHASES:
            if phase.relay:
                phase = dataclasses.replace(phase, config=dataclasses.replace(phase.config, broker=exchange))
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
    label = f"statemgr serve --workers {config.workers}{phase.suffix}"
    print(f"scenarios on {label}:", file=sys.stderr)
    run.facts[f"load average before {label}"] = report.load_average()
    async with statemgr_server.running(db, config) as server:
        async with statemgr_server.channels(server, CHANNELS_PER_WORKER) as channels:
            where = _Where(channels, server.admin_key, server.probe(admin, db))
            await _measure(run, phase, plan, where, floors)
        workers = server.workers()
        for n, pid in enumerate(workers, start=1):
            name = f"{label}: worker {n} of {len(workers)}"
            run.memory.append(report.Memory(name, pid, procfs.rss_mb(pid), MEMORY_LIMIT_MB))
        if (background := server.background()) is not None:
            rss = procfs.rss_mb(background)
            run.memory.append(report.Memory(f"{label}: background", background, rss, MEMORY_LIMIT_MB))
    run.facts[f"exit code of {label}"] = f"{server.exit_code} after SIGTERM"
