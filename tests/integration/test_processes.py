"""`statemgr serve`: the parent process runs the background (the leader duties), the gRPC workers answer calls and
run none of it, and the workers die with the parent (docs/processes.md)."""

from __future__ import annotations

import os
import signal
import time

from tests.integration import cache_fixtures, test_cache_workers
from tests.integration.test_cache_workers import GRACE, Workers, _metrics, _parent_of, _wait

redis_url = cache_fixtures.redis_url
workers = test_cache_workers.workers


def _leader_gauge(port: int) -> float:
    for line in _metrics(port).splitlines():
        if line.startswith("statemgr_events_leader "):
            return float(line.split()[1])
    raise AssertionError(f"no statemgr_events_leader on metrics port {port}")


def test_the_parent_leads_and_the_workers_only_answer_calls(workers: Workers) -> None:
    _wait(lambda: len(workers.listeners()) == 2, "both workers listen on the port", workers=workers)
    assert workers.parent.pid not in workers.listeners()  # the background process answers no call
    background_metrics = workers.metrics_port + 2
    _wait(lambda: _leader_gauge(background_metrics) == 1.0, "the background process leads", workers=workers)
    assert [_leader_gauge(workers.metrics_port + n) for n in (0, 1)] == [0.0, 0.0]


def test_the_workers_stop_when_the_parent_is_killed(workers: Workers) -> None:
    _wait(lambda: len(workers.listeners()) == 2, "both workers listen on the port", workers=workers)
    children = workers.listeners()
    assert all(_parent_of(pid) == workers.parent.pid for pid in children)

    os.kill(workers.parent.pid, signal.SIGKILL)
    workers.parent.wait(timeout=5)

    deadline = time.monotonic() + GRACE + 30  # a graceful stop; a loaded machine makes it slow
    while any(_alive(pid) for pid in children):
        assert time.monotonic() < deadline, "a worker outlived its parent"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Running: not gone, and not a zombie (an exited orphan shows as one until init reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
