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

from bench import targets
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
    "target",
    "met?",
)
CPU_HEADERS = (
    "scenario",
    "mode",
    "achieved/s",
    "gen cpu",
    "srv cpu",
    "srv ms/call",
    "bg cpu",
    "bg ms/call",
    "events/call",
    "relay ms/event",
    "srv+bg ms/call",
    "pg cpu",
    "pg ms/call",
    "rest cpu",
    "ceiling/s",
)
MEMORY_HEADERS = ("process", "pid", "RSS MB", "target", "met?")


@dataclasses.dataclass(frozen=True)
class Memory:
    """The resident set of one serving process after its runs."""

    process: str
    pid: int
    rss_mb: float | None
    limit_mb: float

    @property
    def verdict(self) -> targets.Verdict:
        return targets.memory(self.process, self.rss_mb, self.limit_mb)


@dataclasses.dataclass(frozen=True)
class Run:
    """Everything the report needs about one invocation."""

    command: str
    plan: Plan
    cases: list[Case]
    results: list[Result]
    facts: dict[str, str]
    memory: list[Memory] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor > 0 and value > 0 else "-"


def _judged(run: Run, r: Result) -> list[tuple[str, targets.Verdict]]:
    """The targets of ``r``'s case in ``r``'s mode, each described and judged."""
    cases = {case.name: case for case in run.cases}
    case = cases.get(r.name)
    if case is None:
        return []
    by_key = {(x.name, x.mode): x for x in run.results}
    base = by_key.get((case.floor or "", r.mode))
    return [(t.describe(case.floor), t.judge(r, base)) for t in case.targets if t.mode == r.mode]


def verdicts(run: Run) -> list[tuple[str, str, targets.Verdict]]:
    """Every target of the run: (what, target, verdict), figures first, then memory."""
    out = []
    for r in ordered(run):
        out += [(f"{r.name} ({r.mode})", text, verdict) for text, verdict in _judged(run, r)]
    out += [(f"{m.process} RSS", f"< {m.limit_mb:g} MB", m.verdict) for m in run.memory]
    return out


def ordered(run: Run) -> list[Result]:
    """The results in the order of their cases (the floor first), whatever the order they were measured in."""
    index = {case.name: n for n, case in enumerate(run.cases)}
    return sorted(run.results, key=lambda r: (index.get(r.name, len(index)), r.mode != "open"))


def _mode(r: Result) -> str:
    return "open" if r.mode == "open" else f"closed c={r.concurrency}"


def _rows(run: Run) -> list[tuple[str, ...]]:
    floors = {case.name: case.floor for case in run.cases}
    by_key = {(r.name, r.mode): r for r in run.results}
    rows = []
    for r in ordered(run):
        base = by_key.get((floors.get(r.name) or "", r.mode))
        p50_ratio = _ratio(r.p50_ms, base.p50_ms) if base else ""
        rate_ratio = _ratio(r.achieved_rate, base.achieved_rate) if base and r.mode == "closed" else ""
        target = f"{r.target_rate:,.0f}" if r.target_rate else "max"
        figures = (r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms)
        latencies = tuple(f"{v:.3f}" if r.ok else "-" for v in figures)
        errors, unsent = str(r.error_count), str(r.unsent) if r.mode == "open" else ""
        lag = f"{r.send_lag_p99_ms:.3f}" if r.send_lag_p99_ms is not None else ""
        judged = _judged(run, r)
        goal = "; ".join(text for text, _ in judged)
        met = "; ".join(verdict.text for _, verdict in judged)
        rows.append(
            (
                r.name,
                _mode(r),
                target,
                f"{r.achieved_rate:,.0f}",
                *latencies,
                errors,
                unsent,
                lag,
                p50_ratio,
                rate_ratio,
                goal,
                met,
            )
        )
    return rows


def _per_call(seconds: float | None, r: Result) -> str:
    return f"{seconds * 1000 / r.ok:.3f}" if seconds is not None and r.ok else ""


def _share(seconds: float | None, r: Result) -> str:
    return f"{seconds / r.elapsed_s * 100:.0f}%" if seconds is not None and r.elapsed_s > 0 else ""


def _cpu_rows(run: Run) -> list[tuple[str, ...]]:
    return [
        (
            r.name,
            _mode(r),
            f"{r.achieved_rate:,.0f}",
            _share(r.client_cpu_s, r),
            _share(r.server_cpu_s, r),
            _per_call(r.server_cpu_s, r),
            _share(r.background_cpu_s, r),
            _per_call(r.background_cpu_s, r),
            f"{r.events / r.ok:.2f}" if r.events is not None and r.ok else "",
            f"{r.background_cpu_s * 1000 / r.events:.3f}" if r.background_cpu_s is not None and r.events else "",
            "" if (both := targets.server_ms_per_call(r)) is None else f"{both:.3f}",
            _share(r.pg_cpu_s, r),
            _per_call(r.pg_cpu_s, r),
            _share(r.rest_cpu_s, r),
            _ceiling(r),
        )
        for r in ordered(run)
    ]


def _ceiling(r: Result) -> str:
    """The calls per second this machine's cores could carry if the generator, the server (background included)
    and PostgreSQL had them to themselves, at this case's CPU per call: what more workers could reach at most."""
    if r.server_cpu_s is None or r.pg_cpu_s is None or not r.ok:
        return ""
    own = r.client_cpu_s + r.server_cpu_s + (r.background_cpu_s or 0.0) + r.pg_cpu_s
    return f"{(os.cpu_count() or 1) * r.ok / own:,.0f}" if own > 0 else ""


def _memory_rows(run: Run) -> list[tuple[str, ...]]:
    return [
        (
            m.process,
            str(m.pid),
            "-" if m.rss_mb is None else f"{m.rss_mb:.1f}",
            f"< {m.limit_mb:g} MB",
            m.verdict.text,
        )
        for m in run.memory
    ]


def _fixed(headers: tuple[str, ...], body: list[tuple[str, ...]], text_columns: set[int]) -> str:
    rows = [headers, *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = [
        "  ".join(
            cell.ljust(w) if i in text_columns else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


_TEXT = {0, 1, len(HEADERS) - 2, len(HEADERS) - 1}
_CPU_TEXT = {0, 1}
_MEMORY_TEXT = {0, 3, 4}


def format_table(run: Run) -> str:
    """Fixed-width tables for the terminal: the figures, the CPU time, and the memory."""
    parts = [_fixed(HEADERS, _rows(run), _TEXT), "", _fixed(CPU_HEADERS, _cpu_rows(run), _CPU_TEXT)]
    if run.memory:
        parts += ["", _fixed(MEMORY_HEADERS, _memory_rows(run), _MEMORY_TEXT)]
    return "\n".join(parts)


def _markdown(headers: tuple[str, ...], body: list[tuple[str, ...]], text_columns: set[int]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i in text_columns else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _markdown_table(run: Run) -> str:
    return _markdown(HEADERS, _rows(run), _TEXT)


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


def progress(r: Result) -> None:
    """One line on stderr per measured point, as it comes."""
    print(f"  {r.name:<34} {r.mode:<6} {r.achieved_rate:>8,.0f}/s  p50 {r.p50_ms:.3f} ms", file=sys.stderr)


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
    rate = f"{plan.rate:,.0f} RPCs/s for every case" if plan.rate else "each case's own (see Cases)"
    return {
        "duration per point": f"{plan.duration_s:g} s (after {plan.warmup_s:g} s closed-loop warm-up)",
        "open-loop rate": f"{rate}, at most {plan.max_outstanding} outstanding",
        "closed-loop concurrency": str(plan.concurrency),
    }


def _summary(run: Run) -> list[str]:
    judged = verdicts(run)
    if not judged:
        return []
    misses = [(what, goal, v) for what, goal, v in judged if not v.met]
    out = ["## Targets", "", f"{len(judged) - len(misses)} of {len(judged)} targets met.", ""]
    if misses:
        out += ["Missed:", ""]
        out += [f"- {what}: {goal}: {v.text}" for what, goal, v in misses]
        out += [""]
    return out


def markdown(run: Run) -> str:
    """The whole results file."""
    facts = {**run.facts, **_plan_facts(run.plan)}
    out = ["# Benchmark results", "", f"Command: `{run.command}`", ""]
    out += [f"- {k}: {v}" for k, v in facts.items()]
    out += [""]
    out += [f"**Warning**: {w}" for w in warnings(run)]
    out += ["", *_summary(run)]
    out += ["## Figures", "", _markdown_table(run), ""]
    out += [
        "Rates are calls per second (a 4-RPC case runs its open loop at a quarter of its RPC rate). Latencies in ms:",
        "open loop from each call's scheduled slot, closed loop from its actual send. lag p99: how late the generator",
        "sent (it should stay well under p50). Ratios divide by the named floor's figure in the same mode; a",
        "target's margin is how far the figure is from its bound. See bench/README.md.",
        "",
    ]
    out += ["## CPU time", "", _markdown(CPU_HEADERS, _cpu_rows(run), _CPU_TEXT), ""]
    out += [
        "CPU time during each point, from /proc: gen = this load generator; srv = the serving processes (the floor",
        "server, Redis for redis-get, or statemgr's gRPC workers); bg = statemgr's background process (the relay,",
        "the pruner); events/call = events the relay published per call; relay ms/event = bg CPU per event published;",
        "srv+bg ms/call = the server's whole CPU per call; pg = the PostgreSQL backends of the case's database;",
        "rest = the rest of the machine meanwhile (other processes such as other test runs, PostgreSQL's WAL",
        f"writer, Redis, the kernel). 100% is one core (of {os.cpu_count()}); ms/call divides by the successful calls.",
        "ceiling/s = the cores divided by gen + srv + bg + pg CPU per call: the most calls per second this machine",
        "could carry with nothing else running, however many workers (two workers beat one by at most that much).",
        "",
    ]
    if run.memory:
        out += ["## Memory", "", _markdown(MEMORY_HEADERS, _memory_rows(run), _MEMORY_TEXT), ""]
    if run.notes:
        out += ["## Notes", "", *[f"- {note}" for note in run.notes], ""]
    errors = [f"- {r.name} ({r.mode}): {r.errors}; first of each: {r.error_samples}" for r in run.results if r.errors]
    if errors:
        out += ["## Errors", "", *errors, ""]
    out += ["## Cases", "", "| case | compared to | open-loop RPC/s | what it does |", "|---|---|---:|---|"]
    out += [f"| {c.name} | {c.floor or '-'} | {run.plan.rpc_rate(c):,.0f} | {c.description} |" for c in run.cases]
    return "\n".join(out) + "\n"


# Of one core: another process using this much during a point competed with the code under test for the cores.
REST_WARNING = 0.5


def warnings(run: Run) -> list[str]:
    """Signs that the machine, not the code under test, set the figures."""
    out = []
    late = [r.name for r in run.results if r.send_lag_p99_ms is not None and r.send_lag_p99_ms > LAG_WARNING_MS]
    if late:
        out.append(
            f"the load generator sent late (lag p99 > {LAG_WARNING_MS:g} ms) in {', '.join(dict.fromkeys(late))}: it"
            " was short of CPU, probably because something else was running; those figures are not trustworthy,"
            " run again on a quiet machine."
        )
    busy = [
        f"{r.name} ({r.mode}, {rest / r.elapsed_s:.0%})"
        for r in ordered(run)
        if (rest := r.rest_cpu_s) is not None and r.elapsed_s > 0 and rest / r.elapsed_s > REST_WARNING
    ]
    if busy:
        out.append(
            f"the rest of the machine (other processes, PostgreSQL's and Redis's own work, the kernel) used more than"
            f" {REST_WARNING:.0%} of a core during: {', '.join(busy)}. Figures taken while something else competed"
            " for the cores are slower than this code is."
        )
    return out


def publish(run: Run) -> None:
    """Prints the table and writes RESULTS_FILE (unless nothing was measured)."""
    if not run.results:
        print(f"nothing was measured; {RESULTS_FILE} left as it was")
        return
    print(format_table(run))
    for what, goal, verdict in verdicts(run):
        print(f"target {what}: {goal}: {verdict.text}")
    for r in run.results:
        if r.errors:
            print(f"errors in {r.name} ({r.mode}): {r.errors}; first of each: {r.error_samples}")
    for warning in warnings(run):
        print(f"warning: {warning}")
    RESULTS_FILE.write_text(markdown(run))
    print(f"wrote {RESULTS_FILE}")
