"""Read after write across processes (issue 8, defect 1): two `statemgr serve` processes on one database and one
Redis, calls alternating between them as a per-call load balancer would; and the same through `--workers 2`.
Hundreds of rounds of "read through Y, write through X (OK), read through Y": every read after the write sees it,
for the Genesys id mapping, a customer's update, a message's status and the outbound route (docs/caching.md)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from tests.integration import cache_fixtures, cache_fresh, cache_paths
from tests.integration.conftest import ADMIN_KEY, Client, Clients, _BearerStream, _BearerUnary
from tests.integration.processes import ServeProcess, free_port, free_port_run

redis_url = cache_fixtures.redis_url
forget_tenants = cache_paths.forget_tenants

ROUNDS = 150  # per scenario; four scenarios run at once


def serve_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "STATEMGR_DATABASE_URL": database_url,
        "STATEMGR_REDIS_URL": redis_url,
        "STATEMGR_ADMIN_KEY": ADMIN_KEY,
        "STATEMGR_AMQP_URL": "",
        "STATEMGR_LOG_LEVEL": "warning",
        **extra,
    }


class Opened:
    """Server processes and the clients talking to them, stopped after the test."""

    def __init__(self) -> None:
        self.processes: list[ServeProcess] = []
        self.clients: list[Clients] = []
        self.channels: list[grpc.aio.Channel] = []
        self.database_url = ""

    async def serve(self, env: dict[str, str], args: tuple[str, ...] = ()) -> ServeProcess:
        process = ServeProcess(env, args)
        if "STATEMGR_LISTEN" in env:  # a fixed port (--workers): health is checked there
            process.port = int(env["STATEMGR_LISTEN"].rsplit(":", 1)[1])
        self.processes.append(process)
        await process.start(timeout=60)
        return process

    def clients_of(self, target_port: int) -> Clients:
        opened = Clients(target_port)
        self.clients.append(opened)
        return opened

    def own_connection(self, target_port: int, like: Client) -> Client:
        """A client on a connection of its own (gRPC otherwise shares one between channels to one address)."""
        key = like.api_key
        channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{target_port}",
            options=[("grpc.use_local_subchannel_pool", 1)],
            interceptors=[_BearerUnary(key), _BearerStream(key)],
        )
        self.channels.append(channel)
        return Client(channel, like.tenant_id, key)

    async def close(self) -> None:
        for clients in self.clients:
            await clients.close()
        for channel in self.channels:
            await channel.close()
        for process in self.processes:
            process.kill()


@pytest.fixture
async def opened(forget_tenants: None) -> AsyncIterator[Opened]:
    started = Opened()
    yield started
    await started.close()


async def two_processes(opened: Opened, env: dict[str, str]) -> list[Client]:
    """Two separate `statemgr serve` units; a client of each acting for one new tenant."""
    x, y = [await opened.serve(env) for _ in range(2)]
    writer = await opened.clients_of(x.port).new_tenant("Fresh reads", region="GB")
    return [writer, opened.clients_of(y.port).with_key(writer.api_key, writer.tenant_id)]


async def test_two_processes_every_read_after_a_write_sees_it(
    opened: Opened, database_url: str, redis_url: str
) -> None:
    clients = await two_processes(opened, serve_env(database_url, redis_url))
    await cache_fresh.run_all(clients, ROUNDS)


@pytest.fixture
def metrics_base() -> Iterator[int]:
    yield free_port_run(3)  # 2 workers' metrics, the background's


async def test_two_workers_every_read_after_a_write_sees_it(
    opened: Opened, database_url: str, redis_url: str, metrics_base: int
) -> None:
    port = free_port()
    env = serve_env(
        database_url,
        redis_url,
        STATEMGR_LISTEN=f"127.0.0.1:{port}",
        STATEMGR_METRICS_LISTEN=f"127.0.0.1:{metrics_base}",
    )
    await opened.serve(env, ("--workers", "2"))
    for worker in (0, 1):  # both listen once both serve metrics (health answered as soon as the first was up)
        await until_answers(metrics_base + worker)
    # Twelve connections: SO_REUSEPORT spreads them over the workers (all on one: 1 in 2,000); the rounds
    # alternate between them call by call.
    first = await opened.clients_of(port).new_tenant("Fresh reads, 2 workers", region="GB")
    clients = [opened.own_connection(port, first) for _ in range(12)]
    await cache_fresh.run_all(clients, ROUNDS)
    calls = [_rpc_count(metrics_base + worker) for worker in (0, 1)]
    assert all(count > 100 for count in calls), f"both workers must have answered calls: {calls}"


async def until_answers(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await asyncio.to_thread(_rpc_count, port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def _rpc_count(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("statemgr_rpc_duration_seconds_count{")
    )
