"""The issue's targets, and how each figure compares with its target.

A target belongs to one mode (open or closed loop) of one case. Floor-relative targets divide by the same figure
of the case's floor (``Case.floor``) in the same mode, measured in the same run. Judging is reporting: the bench
still never fails on time.
"""

from __future__ import annotations

import dataclasses

from bench.loadgen import Result


@dataclasses.dataclass(frozen=True)
class Verdict:
    met: bool
    text: str


def _margin(value: float, limit: float) -> str:
    return f"{(value - limit) / limit * 100:+.0f}%"


def _verdict(met: bool, measured: str, op: str, limit: str, value: float, bound: float) -> Verdict:
    sign = op if met else {"<=": ">", ">=": "<", "<": ">="}[op]
    return Verdict(met, f"{'yes' if met else 'no'}: {measured} {sign} {limit} ({_margin(value, bound)})")


@dataclasses.dataclass(frozen=True)
class Target:
    """A bound on one figure: ``kind`` is p95 or p50 (ms, at most), p50/floor (at most), rate (calls/s, at least),
    rate/floor (at least) or cpu (the server's CPU ms per call, background process included, at most)."""

    mode: str
    kind: str
    limit: float

    def describe(self, floor: str | None) -> str:
        if self.kind in ("p95", "p50"):
            return f"{self.kind} <= {self.limit:g} ms"
        if self.kind == "cpu":
            return f"server CPU <= {self.limit:g} ms/call"
        if self.kind == "p50/floor":
            return f"p50 <= {self.limit:g}x {floor}"
        if self.kind == "rate":
            return f">= {self.limit:,.0f}/s"
        return f"max >= {self.limit:g}x {floor}"

    def judge(self, result: Result, floor: Result | None) -> Verdict:
        """How ``result`` compares with this target (``floor``: the floor case's result in the same mode)."""
        if result.ok == 0:
            return Verdict(False, "no: no call succeeded")
        if self.kind in ("p95", "p50"):
            value = result.p95_ms if self.kind == "p95" else result.p50_ms
            measured = f"{self.kind} {value:.2f} ms"
            return _verdict(value <= self.limit, measured, "<=", f"{self.limit:g} ms", value, self.limit)
        if self.kind == "cpu":
            per_call = server_ms_per_call(result)
            if per_call is None:
                return Verdict(False, "no: the server's CPU was not measured")
            measured = f"{per_call:.3f} ms/call"
            return _verdict(per_call <= self.limit, measured, "<=", f"{self.limit:g} ms", per_call, self.limit)
        if self.kind == "rate":
            rate = result.achieved_rate
            return _verdict(rate >= self.limit, f"{rate:,.0f}/s", ">=", f"{self.limit:,.0f}/s", rate, self.limit)
        if floor is None or floor.ok == 0:
            return Verdict(False, "no: the floor was not measured")
        if self.kind == "p50/floor":
            ratio = result.p50_ms / floor.p50_ms
            text = f"p50 {result.p50_ms:.2f} ms = {ratio:.2f}x"
            return _verdict(ratio <= self.limit, text, "<=", f"{self.limit:g}x", ratio, self.limit)
        ratio = result.achieved_rate / floor.achieved_rate
        text = f"{result.achieved_rate:,.0f}/s = {ratio:.2f}x"
        return _verdict(ratio >= self.limit, text, ">=", f"{self.limit:g}x", ratio, self.limit)


def server_ms_per_call(result: Result) -> float | None:
    """The server's CPU per successful call: the processes answering calls plus the background process (the
    relay's share), not PostgreSQL's."""
    if result.server_cpu_s is None or not result.ok:
        return None
    return (result.server_cpu_s + (result.background_cpu_s or 0.0)) * 1000 / result.ok


def p50(limit_ms: float) -> Target:
    """Open-loop p50 at most ``limit_ms``."""
    return Target("open", "p50", limit_ms)


def cpu(limit_ms: float) -> Target:
    """Closed-loop server CPU per call (background included) at most ``limit_ms``."""
    return Target("closed", "cpu", limit_ms)


def p95(limit_ms: float) -> Target:
    """Open-loop p95 at most ``limit_ms``."""
    return Target("open", "p95", limit_ms)


def p50_vs_floor(factor: float) -> Target:
    """Open-loop p50 at most ``factor`` times the floor's."""
    return Target("open", "p50/floor", factor)


def max_rate(calls_per_s: float) -> Target:
    """Closed-loop throughput at least ``calls_per_s``."""
    return Target("closed", "rate", calls_per_s)


def max_vs_floor(factor: float) -> Target:
    """Closed-loop throughput at least ``factor`` times the floor's."""
    return Target("closed", "rate/floor", factor)


def memory(name: str, rss_mb: float | None, limit_mb: float) -> Verdict:
    """A process's resident set against ``limit_mb``."""
    if rss_mb is None:
        return Verdict(False, f"no: {name} was gone before its memory was read")
    return _verdict(rss_mb < limit_mb, f"{rss_mb:.0f} MB", "<", f"{limit_mb:g} MB", rss_mb, limit_mb)
