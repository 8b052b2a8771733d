"""Running `statemgr serve` as a real subprocess, for tests of signals, workers and several servers on one database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (each held until all are found: one at a time, the system may repeat one)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port_run(count: int) -> int:
    """A port p with p .. p + count - 1 all free: `statemgr serve` puts worker i's metrics on the metrics port plus i
    and the background process's on plus the number of workers. One free port is not enough: the next one is often
    a client connection's ephemeral port."""
    while True:
        with contextlib.ExitStack() as held:
            first = held.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            base = int(first.getsockname()[1])
            try:
                for offset in range(1, count):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base


class ServeProcess:
    """`python -m statemgr.cli serve` with the given STATEMGR_* settings, on 127.0.0.1:<port>."""

    def __init__(self, env: Mapping[str, str], args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.env = {**os.environ, "STATEMGR_LISTEN": f"127.0.0.1:{self.port}", "STATEMGR_METRICS_LISTEN": "", **env}
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server's log writes.
        self._log = tempfile.TemporaryFile()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> None:
        command = [sys.executable, "-m", "statemgr.cli", "serve", *self.args]
        self.proc = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                message = f"statemgr serve exited: {self.stderr()}"
                self._log.close()
                raise RuntimeError(message)
            if await self.health() == health_pb2.HealthCheckResponse.SERVING:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError("statemgr serve did not become SERVING")

    async def health(self) -> int | None:
        async with grpc.aio.insecure_channel(self.target) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            except grpc.aio.AioRpcError:
                return None
            return int(reply.status)

    def workers(self) -> list[int]:
        """The pids of the gRPC worker processes `statemgr serve` started (none with --workers 0)."""
        assert self.proc is not None
        children = pathlib.Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.proc.poll() is None:
            raise TimeoutError(f"statemgr serve still running after {timeout} s")
        return int(self.proc.returncode)

    def stderr(self) -> str:
        """The last lines the server logged."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
