"""The results table, on the terminal and in bench/RESULTS.md with the machine it was measured on."""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import platform
import subprocess
import sys

import grpc

from bench.loadgen import Case, Plan, Result

RESULTS_FILE = pathlib.Path(__file__).with_name("RESULTS.md")
# At 500 calls/s an idle generator sends within ~0.2 ms of each slot; much later means it was starved of CPU.
LAG_WARNING_MS = 1.0

HEADERS = (
    "scenario",
    "mode",
    "target/s",
    "achieved/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "errors",
    "unsent",
    "lag p99",
    "p50 / floor",
    "max rate / floor",
)


@dataclasses.dataclass(frozen=True)
class Run:
    """Everything the report needs about one invocation."""

    command: str
    plan: Plan
    cases: list[Case]
    results: list[Result]
    facts: dict[str, str]


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor > 0 and value > 0 else "-"


def _rows(run: Run) -> list[tuple[str, ...]]:
    floors = {case.name: case.floor for case in run.cases}
    by_key = {(r.name, r.mode): r for r in run.results}
    rows = []
    for r in run.results:
        base = by_key.get((floors.get(r.name) or "", r.mode))
        p50_ratio = _ratio(r.p50_ms, base.p50_ms) if base else ""
        rate_ratio = _ratio(r.achieved_rate, base.achieved_rate) if base and r.mode == "closed" else ""
        mode = "open" if r.mode == "open" else f"closed c={r.concurrency}"
        target = f"{r.target_rate:,.0f}" if r.target_rate else "max"
        figures = (r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms)
        latencies = tuple(f"{v:.3f}" if r.ok else "-" for v in figures)
        errors, unsent = str(r.error_count), str(r.unsent) if r.mode == "open" else ""
        lag = f"{r.send_lag_p99_ms:.3f}" if r.send_lag_p99_ms is not None else ""
        rows.append(
            (r.name, mode, target, f"{r.achieved_rate:,.0f}", *latencies, errors, unsent, lag, p50_ratio, rate_ratio)
        )
    return rows


def format_table(run: Run) -> str:
    """A fixed-width table for the terminal."""
    rows = [HEADERS, *_rows(run)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = [
        "  ".join(
            cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown_table(run: Run) -> str:
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(HEADERS))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(run)]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages; on 2 cores, anything near 1 before a run means it is not alone."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def machine() -> dict[str, str]:
    """Facts about this machine and this run's software."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git commit": _git_commit(),
        "cpu": _cpu_model(),
        "nproc": str(len(os.sched_getaffinity(0))),
        "memory": _memory(),
        "kernel": platform.release(),
        "load average at start": load_average(),
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
    }


def _plan_facts(plan: Plan) -> dict[str, str]:
    return {
        "duration per point": f"{plan.duration_s:g} s (after {plan.warmup_s:g} s closed-loop warm-up)",
        "open-loop rate": f"{plan.rate:,.0f} calls/s, at most {plan.max_outstanding} outstanding",
        "closed-loop concurrency": str(plan.concurrency),
    }


def markdown(run: Run) -> str:
    """The whole results file."""
    facts = {**run.facts, **_plan_facts(run.plan)}
    out = ["# Benchmark results", "", f"Command: `{run.command}`", ""]
    out += [f"- {k}: {v}" for k, v in facts.items()]
    out += ["", "## Figures", "", _markdown_table(run), ""]
    out += [
        "Rates are calls per second (a 4-RPC case runs its open loop at a quarter of the RPC rate). Latencies in ms:",
        "open loop from each call's scheduled slot, closed loop from its actual send. lag p99: how late the generator",
        "sent (it should stay well under p50). Ratios divide by the named floor's figure in the same mode.",
        "See bench/README.md.",
        "",
    ]
    out += [f"**Warning**: {w}" for w in warnings(run)]
    errors = [f"- {r.name} ({r.mode}): {r.errors}; first of each: {r.error_samples}" for r in run.results if r.errors]
    if errors:
        out += ["## Errors", "", *errors, ""]
    out += ["## Cases", "", "| case | compared to | what it does |", "|---|---|---|"]
    out += [f"| {c.name} | {c.floor or '-'} | {c.description} |" for c in run.cases]
    return "\n".join(out) + "\n"


def warnings(run: Run) -> list[str]:
    """Signs that the machine, not the code under test, set the figures."""
    late = [r.name for r in run.results if r.send_lag_p99_ms is not None and r.send_lag_p99_ms > LAG_WARNING_MS]
    if not late:
        return []
    return [
        f"the load generator sent late (lag p99 > {LAG_WARNING_MS:g} ms) in {', '.join(late)}: it was short of CPU,"
        " probably because something else was running; those figures are not trustworthy, run again on a quiet"
        " machine."
    ]


def publish(run: Run) -> None:
    """Prints the table and writes RESULTS_FILE (unless nothing was measured)."""
    if not run.results:
        print(f"nothing was measured; {RESULTS_FILE} left as it was")
        return
    print(format_table(run))
    for r in run.results:
        if r.errors:
            print(f"errors in {r.name} ({r.mode}): {r.errors}; first of each: {r.error_samples}")
    for warning in warnings(run):
        print(f"warning: {warning}")
    RESULTS_FILE.write_text(markdown(run))
    print(f"wrote {RESULTS_FILE}")
