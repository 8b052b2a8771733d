"""A three-master Redis Cluster of the test's own, from the `redis-server` binary, on free local ports.

Each node gets a free client port and a free cluster-bus port (`cluster-port`, Redis 7), no persistence, and
`cluster-require-full-coverage no` so the other nodes keep serving while one is killed. `redis-cli --cluster
create` assigns the slots. A node can be killed (SIGKILL) and started again on its nodes.conf: it comes back as
the same node with the same slots, empty. `migrate_slot` moves one slot between nodes, keys and all, as
`redis-cli --cluster reshard` does, while clients keep running.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import REQUIRE_SERVICES
from tests.integration.processes import free_ports

NODES = 3


class Node:
    def __init__(self, directory: Path, port: int, bus_port: int) -> None:
        self.port = port
        self.bus_port = bus_port
        self.dir = directory / str(self.port)
        self.dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--cluster-port", str(self.bus_port), "--bind", "127.0.0.1",
            "--cluster-enabled", "yes", "--cluster-config-file", str(self.dir / "nodes.conf"),
            "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(self._answers, f"redis node {self.port} answers")

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            log = self.dir / "redis.log"
            raise RuntimeError(f"redis-server exited: {log.read_text()[-2000:] if log.exists() else ''}")
        with self.client() as c:
            return bool(c.ping())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def node_id(self) -> str:
        with self.client() as c:
            return bytes(c.execute_command("CLUSTER MYID")).decode()


class RedisCluster:
    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="statemgr-redis-cluster-"))
        ports = free_ports(2 * NODES)
        self.nodes = [Node(self._dir, ports[2 * n], ports[2 * n + 1]) for n in range(NODES)]

    @property
    def url(self) -> str:
        """The service's URL for it: every node listed, any one would do."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        self.wait_ok()

    def wait_ok(self, timeout: float = 20.0) -> None:
        """Until every node sees the cluster as ok and agrees on who owns the slots."""
        _wait(self._agreed, "the cluster is ok on every node", timeout)

    def _agreed(self) -> bool:
        views = []
        for node in self.nodes:
            with node.client() as c:
                if c.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    return False
                views.append(sorted((s[0], s[1], s[2][1]) for s in c.execute_command("CLUSTER SLOTS")))
        return all(view == views[0] for view in views)

    def sync_client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port, require_full_coverage=False)

    def owner(self, slot: int) -> Node:
        with self.nodes[0].client() as c:
            for start, end, master, *_ in c.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return next(n for n in self.nodes if n.port == master[1])
        raise LookupError(slot)

    def migrate_slot(self, slot: int, target: Node) -> int:
        """Moves `slot` with its keys to `target` (the CLUSTER SETSLOT / MIGRATE dance); returns the keys moved."""
        source = self.owner(slot)
        source_id, target_id = source.node_id(), target.node_id()
        moved = 0
        with source.client() as src, target.client() as dst:
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
            while found := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "REPLACE", "KEYS", *found)
                moved += len(found)
            for node in (target, source, *[n for n in self.nodes if n not in (source, target)]):
                with node.client() as c:
                    c.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        return moved

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


def _wait(check: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting until {what}")
        time.sleep(0.05)


def require() -> None:
    if shutil.which("redis-server") and shutil.which("redis-cli"):
        return
    message = "redis-server and redis-cli are needed for the Redis Cluster tests"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def running() -> Iterator[RedisCluster]:
    """A started cluster, stopped at the end: a test module's fixture (`pytest.fixture(scope="module")(running)`)."""
    require()
    started = RedisCluster()
    try:
        started.start()
        yield started
    finally:
        started.stop()
