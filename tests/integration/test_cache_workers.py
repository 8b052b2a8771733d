"""`statemgr serve --workers 2`: two processes on one port, each answering health checks and serving its own
metrics port; SIGTERM stops them all within the grace period; a worker that dies takes the others down."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration import cache_fixtures
from tests.integration.processes import free_port_run

redis_url = cache_fixtures.redis_url
GRACE = 2.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Workers:
    def __init__(self, database_url: str, redis_url: str, log_path: str) -> None:
        self.port, self.metrics_port = _free_port(), free_port_run(3)  # 2 workers' metrics, the background's
        env = dict(os.environ)
        env.update(
            STATEMGR_DATABASE_URL=database_url,
            STATEMGR_REDIS_URL=redis_url,
            STATEMGR_AMQP_URL="",
            STATEMGR_LISTEN=f"127.0.0.1:{self.port}",
            STATEMGR_METRICS_LISTEN=f"127.0.0.1:{self.metrics_port}",
            STATEMGR_SHUTDOWN_GRACE_SECONDS=str(GRACE),
            STATEMGR_LOG_LEVEL="warning",
        )
        command = [sys.executable, "-m", "statemgr.cli", "serve", "--workers", "2"]
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.parent = subprocess.Popen(command, env=env, stderr=log)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as log:
            return log.read()[-3000:]

    def listeners(self) -> set[int]:
        """Pids of the processes holding a listening socket on the gRPC port."""
        inodes = _listening_inodes(self.port)
        pids = set()
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
                except OSError:
                    continue
                if any(f"socket:[{inode}]" in links for inode in inodes):
                    pids.add(int(pid))
        return pids

    def serving(self) -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def stop(self) -> None:
        if self.parent.poll() is None:
            self.parent.kill()
            self.parent.wait()
        for pid in self.listeners():
            os.kill(pid, signal.SIGKILL)


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    inodes.add(fields[9])
    return inodes


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0, workers: Workers | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = "" if workers is None else f"; exit code {workers.parent.poll()}, log:\n{workers.log()}"
            raise AssertionError(f"timed out waiting until {what}{detail}")
        time.sleep(0.1)


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def workers(database_url: str, redis_url: str, tmp_path: pathlib.Path) -> Iterator[Workers]:
    started = Workers(database_url, redis_url, str(tmp_path / "serve.log"))
    yield started
    started.stop()


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_two_workers_share_the_port_and_stop_together_on_sigterm(workers: Workers) -> None:
    _wait(lambda: len(workers.listeners()) == 2, "both workers listen on the port", workers=workers)
    pids = workers.listeners()
    assert all(_parent_of(pid) == workers.parent.pid for pid in pids)
    _wait(workers.serving, "the health check answers SERVING")
    assert all(workers.serving() for _ in range(10))  # ten connections, spread by the kernel over both
    for port in (workers.metrics_port, workers.metrics_port + 1):
        assert "statemgr_cache_hits_total" in _metrics(port)

    started = time.monotonic()
    workers.parent.send_signal(signal.SIGTERM)
    assert workers.parent.wait(timeout=GRACE + 5) == 0
    assert time.monotonic() - started < GRACE + 1
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)


def test_a_worker_that_dies_stops_the_others(workers: Workers) -> None:
    _wait(lambda: len(workers.listeners()) == 2, "both workers listen on the port", workers=workers)
    victim, survivor = sorted(workers.listeners())

    os.kill(victim, signal.SIGKILL)

    assert workers.parent.wait(timeout=GRACE + 5) == 1
    _wait(lambda: not os.path.exists(f"/proc/{survivor}"), "the other worker exits", timeout=2)
