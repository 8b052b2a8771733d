"""The scale-out engines next to the single-node setup, in one run: a cached lookup and a status update.

    python -m bench.scaleout            # about 2 minutes: 3 setups x 2 workloads x (open + closed loop)
    python -m bench.scaleout --quick    # 2 s points

Three setups, each a `statemgr serve --workers 1` of its own (bench.statemgr_server) on a throwaway database:

- **single node**: PostgreSQL directly, one Redis (the bench servers' Redis database);
- **redis cluster**: the same, with the cache on a three-master Redis Cluster this run starts on free ports
  (`redis+cluster://`);
- **pgbouncer**: the same as single node, with the pool going through a PgBouncer in transaction mode this run
  starts on a free port (4 server connections; prepared statements off for PgBouncer before 1.21), LISTEN and the
  leader's lock direct (`STATEMGR_DATABASE_DIRECT_URL`).

Workloads (bench.scenarios): LookupConversation by WhatsApp id over 100 conversations (the cached path), and
UpdateMessageStatus (every report moves a message up). Each in an open loop at a moderate rate (500 and 100 calls/s,
for latency on a machine shared with other work) and a closed loop of 32 (the most calls per second). The engines
are started with the test suite's helpers (tests/integration/rediscluster.py, pgbouncer.py). Prints a table and
writes bench/SCALEOUT.md with the machine's load; not a test: it never passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import pathlib
import sys
from collections.abc import AsyncIterator, Sequence

import psycopg

from bench import loadgen, report, scenarios, statemgr_server
from bench.loadgen import Case, Plan, Result
from bench.scenarios import Context
from bench.statemgr_server import Config, Database
from tests.integration import pgbouncer, rediscluster

OUTPUT = pathlib.Path(__file__).with_name("SCALEOUT.md")
SETUPS = ("single node", "redis cluster", "pgbouncer")
PGBOUNCER_SERVER_CONNECTIONS = 4
WORKLOADS = (
    ("cached LookupConversation", scenarios.lookup_conversation, 500.0),
    ("UpdateMessageStatus", scenarios.update_message_status, 100.0),
)
CLOSED_CEILING = 4000  # calls/s assumed at most, to size the messages update_message_status records


@contextlib.asynccontextmanager
async def settings_for(setup: str, db: Database) -> AsyncIterator[tuple[tuple[str, str], ...]]:
    """The STATEMGR_* settings of `setup`, with its engine running until the block ends."""
    if setup == "redis cluster":
        cluster = rediscluster.RedisCluster()
        try:
            await asyncio.to_thread(cluster.start)  # a node that started is stopped even if another did not
            yield (("STATEMGR_REDIS_URL", cluster.url),)
        finally:
            cluster.stop()
    elif setup == "pgbouncer":
        bouncer = pgbouncer.PgBouncer(db.admin_url, PGBOUNCER_SERVER_CONNECTIONS)
        try:
            bouncer.start()
            yield (
                ("STATEMGR_DATABASE_URL", bouncer.url(db.name)),
                ("STATEMGR_DATABASE_DIRECT_URL", db.url),
                ("STATEMGR_DB_PREPARED_STATEMENTS", str(pgbouncer.handles_prepared_statements()).lower()),
            )
        finally:
            bouncer.stop()
    else:
        yield ()


async def measure(setup: str, plan: Plan) -> list[Result]:
    results = []
    async with statemgr_server.database() as db, settings_for(setup, db) as env:
        config = Config(workers=1, env=env)
        async with (
            await psycopg.AsyncConnection.connect(db.admin_url, autocommit=True) as admin,
            statemgr_server.running(db, config) as server,
            statemgr_server.channels(server, 1) as channels,
        ):
            calls = int((plan.warmup_s + 2 * plan.duration_s) * CLOSED_CEILING)
            for name, make, rate in WORKLOADS:
                call = await make(Context(channels, server.admin_key, calls))
                case = Case(f"{name} [{setup}]", None, name, call, rate=rate, probe=server.probe(admin, db))
                for result in await loadgen.measure(case, plan):
                    report.progress(result)
                    results.append(result)
    return results


def table(results: Sequence[Result]) -> str:
    rows = ["| case | mode | calls/s | p50 ms | p95 ms | p99 ms | errors |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        mode = "open" if r.mode == "open" else f"closed c={r.concurrency}"
        rows.append(
            f"| {r.name} | {mode} | {r.achieved_rate:,.0f} | {r.p50_ms:.3f} | {r.p95_ms:.3f} | {r.p99_ms:.3f}"
            f" | {r.error_count} |"
        )
    return "\n".join(rows)


async def main(plan: Plan) -> None:
    load_before = report.load_average()
    results = [r for setup in SETUPS for r in await measure(setup, plan)]
    text = table(results)
    print(text)
    OUTPUT.write_text(
        "# Scale-out engines next to one node (python -m bench.scaleout)\n\n"
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; commit {report.machine().get('git commit', '?')}\n"
        f"- load average before: {load_before}; after: {report.load_average()} (the machine is shared: figures"
        " move between runs)\n"
        f"- {plan.duration_s:g} s per point; open loop at each workload's rate, closed loop c={plan.concurrency}\n"
        f"- PgBouncer: transaction mode, {PGBOUNCER_SERVER_CONNECTIONS} server connections,"
        f" {'.'.join(map(str, pgbouncer.version()))}; Redis Cluster: three masters on this machine\n\n"
        f"{text}\n"
    )


def _parse(argv: list[str]) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 s per point")
    args = parser.parse_args(argv)
    duration, warmup = (2.0, 0.3) if args.quick else (5.0, 0.5)
    return Plan(duration_s=duration, warmup_s=warmup, rate=None, concurrency=32, max_outstanding=1000)


if __name__ == "__main__":
    asyncio.run(main(_parse(sys.argv[1:])))
