"""``python -m bench [--quick] [--only floor|scenarios] [--target host:port]``: measure and report.

The floor and statemgr: by default on servers this run starts (bench.suite), or on ``--target``; each floor case
is measured just before the first scenario compared to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
import time

import grpc

from bench import floor, report
from bench.loadgen import Case, Plan

DEFAULT = Plan(duration_s=5.0, warmup_s=0.5, rate=None, concurrency=32, max_outstanding=1000)
QUICK = Plan(duration_s=2.0, warmup_s=0.3, rate=None, concurrency=32, max_outstanding=1000)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short points (about a minute and a half in all)")
    p.add_argument("--only", choices=("floor", "scenarios"), help="run only the floor or only the scenarios")
    p.add_argument(
        "--target",
        help="host:port of a running statemgr server to measure instead of starting one (admin key in"
        " STATEMGR_BENCH_ADMIN_KEY)",
    )
    p.add_argument("--health-target", help="host:port whose grpc.health.v1 Check is the no-op floor (default: own)")
    p.add_argument("--duration", type=float, help="seconds per measured point")
    p.add_argument("--warmup", type=float, help="seconds of closed-loop warm-up before each case")
    p.add_argument("--rate", type=float, help="open-loop RPCs per second for every case (default: each case's own)")
    p.add_argument("--concurrency", type=int, help="closed-loop workers")
    p.add_argument("--max-outstanding", type=int, help="open-loop cap on calls in flight")
    p.add_argument("--pg-pool", type=int, default=10, help="PostgreSQL connections of each floor pool")
    return p


def _plan(args: argparse.Namespace) -> Plan:
    base = QUICK if args.quick else DEFAULT
    return Plan(
        duration_s=args.duration or base.duration_s,
        warmup_s=base.warmup_s if args.warmup is None else args.warmup,
        rate=args.rate,
        concurrency=args.concurrency or base.concurrency,
        max_outstanding=args.max_outstanding or base.max_outstanding,
    )


async def _scenarios(args: argparse.Namespace, plan: Plan, run: report.Run, floors: floor.Floors) -> None:
    from bench import suite  # imported only here, so the floor runs whatever state the stubs are in

    if not args.target:
        await suite.own(plan, run, floors)
        return
    admin_key = os.environ.get("STATEMGR_BENCH_ADMIN_KEY", "")
    if not admin_key:
        raise SystemExit("--target needs the server's admin key in STATEMGR_BENCH_ADMIN_KEY")
    await suite.against(args.target, admin_key, plan, run, floors)


async def _measure(args: argparse.Namespace, plan: Plan, run: report.Run) -> None:
    """The floor's resources stay up while statemgr runs: each floor case is measured next to its scenarios."""
    async with contextlib.AsyncExitStack() as stack:
        cases: list[Case] = []
        if args.only != "scenarios":
            options = floor.Options.from_env(args.pg_pool, args.health_target)
            cases = await stack.enter_async_context(floor.prepared(options, floor.Environment(run.facts)))
            run.cases.extend(cases)
        floors = floor.Floors(cases, plan, run)
        if args.only != "floor":
            await _scenarios(args, plan, run, floors)
        await floors.rest()


async def _main(args: argparse.Namespace) -> int:
    plan = _plan(args)
    command = shlex.join(["python", "-m", "bench", *sys.argv[1:]])
    run = report.Run(command=command, plan=plan, cases=[], results=[], facts=report.machine())
    started = time.monotonic()
    status = 0
    try:
        await _measure(args, plan, run)
    except (grpc.aio.AioRpcError, RuntimeError) as exc:  # report what was measured, then fail
        detail = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
        print(f"stopped: {detail}", file=sys.stderr)
        run.notes.append(f"The run stopped early: {detail}")
        status = 1
    run.facts["load average at end"] = report.load_average()
    run.facts["wall time"] = f"{time.monotonic() - started:.0f} s"
    report.publish(run)
    return status


def main() -> int:
    """Parses the command line and runs the benchmark."""
    return asyncio.run(_main(_parser().parse_args()))


if __name__ == "__main__":
    sys.exit(main())
