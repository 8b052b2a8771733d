"""``python -m bench [--quick] [--only floor|scenarios] [--target host:port]``: measure and report."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys

import grpc

from bench import floor, report
from bench.loadgen import Case, Plan, Result, measure

DEFAULT = Plan(duration_s=8.0, warmup_s=1.0, rate=500.0, concurrency=32, max_outstanding=1000)
QUICK = Plan(duration_s=3.0, warmup_s=0.5, rate=500.0, concurrency=32, max_outstanding=1000)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short points (about a minute for the floor)")
    p.add_argument("--only", choices=("floor", "scenarios"), help="run only the floor or only the scenarios")
    p.add_argument("--target", help="host:port of a running statemgr server (admin key in STATEMGR_BENCH_ADMIN_KEY)")
    p.add_argument("--health-target", help="host:port whose grpc.health.v1 Check is the no-op floor (default: own)")
    p.add_argument("--duration", type=float, help="seconds per measured point")
    p.add_argument("--warmup", type=float, help="seconds of closed-loop warm-up before each case")
    p.add_argument("--rate", type=float, help="open-loop calls per second")
    p.add_argument("--concurrency", type=int, help="closed-loop workers")
    p.add_argument("--max-outstanding", type=int, help="open-loop cap on calls in flight")
    p.add_argument("--pg-pool", type=int, default=10, help="PostgreSQL connections of each floor pool")
    return p


def _plan(args: argparse.Namespace) -> Plan:
    base = QUICK if args.quick else DEFAULT
    return Plan(
        duration_s=args.duration or base.duration_s,
        warmup_s=base.warmup_s if args.warmup is None else args.warmup,
        rate=args.rate or base.rate,
        concurrency=args.concurrency or base.concurrency,
        max_outstanding=args.max_outstanding or base.max_outstanding,
    )


async def _measure_all(cases: list[Case], plan: Plan) -> list[Result]:
    results = []
    for case in cases:
        for r in await measure(case, plan):
            print(f"  {r.name:<22} {r.mode:<6} {r.achieved_rate:>8,.0f}/s  p50 {r.p50_ms:.3f} ms", file=sys.stderr)
            results.append(r)
    return results


async def _floor(args: argparse.Namespace, plan: Plan, run: report.Run) -> None:
    env = floor.Environment(run.facts)
    options = floor.Options.from_env(args.pg_pool, args.health_target)
    print("floor:", file=sys.stderr)
    async with floor.prepared(options, env) as cases:
        run.cases.extend(cases)
        run.results.extend(await _measure_all(cases, plan))


async def _scenarios(args: argparse.Namespace, plan: Plan, run: report.Run) -> None:
    from bench import scenarios  # imported only here, so the floor runs whatever state the stubs are in

    admin_key = os.environ.get("STATEMGR_BENCH_ADMIN_KEY", "")
    if not admin_key:
        raise SystemExit("scenarios need the admin key in STATEMGR_BENCH_ADMIN_KEY")
    print(f"scenarios against {args.target}:", file=sys.stderr)
    async with scenarios.prepared(args.target, admin_key) as cases:
        run.cases.extend(cases)
        run.results.extend(await _measure_all(cases, plan))


async def _main(args: argparse.Namespace) -> int:
    plan = _plan(args)
    command = shlex.join(["python", "-m", "bench", *sys.argv[1:]])
    run = report.Run(command=command, plan=plan, cases=[], results=[], facts=report.machine())
    if args.only != "scenarios":
        await _floor(args, plan, run)
    status = 0
    if args.only == "scenarios" or (args.only is None and args.target):
        try:
            await _scenarios(args, plan, run)
        except grpc.aio.AioRpcError as exc:  # report what was measured, then fail
            print(f"scenarios stopped: {exc.code().name}: {exc.details()}", file=sys.stderr)
            status = 1
    elif args.only is None:
        print("scenarios skipped: no --target (start statemgr and pass --target host:port)", file=sys.stderr)
    run.facts["load average at end"] = report.load_average()
    report.publish(run)
    return status


def main() -> int:
    """Parses the command line and runs the benchmark."""
    args = _parser().parse_args()
    if args.only == "scenarios" and not args.target:
        _parser().error("--only scenarios needs --target host:port")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
