"""A RabbitMQ node of the test's own: its own node name, free AMQP and distribution ports, its own data and log
directories, no plugins. It can be killed and started again on the same data, which the machine's RabbitMQ (which
other tests and helpers use) must never be. It registers with the machine's epmd, like any second node would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.integration.processes import free_ports

# The Debian wrapper /usr/sbin/rabbitmq-server switches to the rabbitmq user, who cannot write a test's directory.
SERVER = next(
    (p for p in ("/usr/lib/rabbitmq/bin/rabbitmq-server", shutil.which("rabbitmq-server")) if p and os.path.exists(p)),
    "",
)


class RabbitNode:
    def __init__(self) -> None:
        self.port, self._dist_port = free_ports(2)
        self._dir = Path(tempfile.mkdtemp(prefix="statemgr-rabbit-"))
        self._name = f"statemgr-test-{uuid.uuid4().hex[:8]}@localhost"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def start(self, timeout: float = 90.0) -> None:
        """Starts the node (on the data of any earlier start) and waits until it accepts AMQP connections."""
        (self._dir / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (self._dir / "enabled_plugins").write_text("[].\n")
        (self._dir / "rabbitmq-env.conf").write_text("")  # not the machine's, which names the machine's node
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": self._name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self._dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(self._dir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self._dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self._dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self._dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self._dir / "log"),
            "RABBITMQ_PID_FILE": str(self._dir / "pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        with (self._dir / "out.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [SERVER], env=env, cwd=self._dir, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {self.log()}")
            if "Starting broker... completed" in self.log() and _accepts(self.port):
                return
            time.sleep(0.2)
        raise TimeoutError(f"rabbitmq-server did not start: {self.log()}")

    def kill(self) -> None:
        """SIGKILL to the node's whole process group (the script and the Erlang VM): a crash, not a shutdown."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM to the node: the clean shutdown a rolling restart does (queues and their logs closed in order)."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: signal.Signals) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signum)
        self._proc.wait(60)
        self._proc = None
        (self._dir / "out.log").write_bytes(b"")

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def log(self) -> str:
        path = self._dir / "out.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def require() -> None:
    if SERVER:
        return
    message = "rabbitmq-server is not installed"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)
