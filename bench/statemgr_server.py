"""The statemgr under test: a throwaway migrated database and a real ``statemgr serve --workers N`` subprocess.

The server runs with a random admin key, on a free port of 127.0.0.1, with Redis on a database number of its own
(flushed before each start and after each stop), and as its Config says: relaying to this run's RabbitMQ exchange
(bench.broker) or not (events stay in PostgreSQL's outbox and log), with metrics on free ports or none, at the log
level asked for; its output goes to a file, shown if it fails to start. Nothing else of the environment's
STATEMGR_* variables reaches it, so a developer's settings do not change the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pathlib
import secrets
import signal
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator

import grpc
import psycopg
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql

from bench import floordb, procfs
from bench.broker import Broker
from bench.loadgen import Probe, Usage
from statemgr.store import migrate
from tests.integration import processes

REDIS_URL = os.environ.get("STATEMGR_BENCH_SERVER_REDIS_URL", "redis://127.0.0.1:6379/15")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
_HEALTH = (("grpc.use_local_subchannel_pool", 1),)  # a connection of its own, not one shared with other channels


@dataclasses.dataclass(frozen=True)
class Database:
    """A migrated database of this run."""

    name: str
    url: str
    admin_url: str


@contextlib.asynccontextmanager
async def database() -> AsyncIterator[Database]:
    """Creates a database through STATEMGR_BENCH_PG_URL, applies every migration, yields it, and drops it."""
    admin = floordb.admin_url()
    name = f"statemgr_bench_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = psycopg.conninfo.make_conninfo(admin, dbname=name)
        await migrate.up(url)
        yield Database(name, url, admin)
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclasses.dataclass(frozen=True)
class Config:
    """How to run the server: ``workers`` gRPC processes (``statemgr serve --workers``) beside the background
    process, at ``log_level``; relaying to ``broker`` (None: no relay) and serving metrics or not."""

    workers: int
    log_level: str = "warning"
    broker: Broker | None = None
    metrics: bool = True
    env: tuple[tuple[str, str], ...] = ()  # more STATEMGR_* settings, e.g. a diagnostic switch


@dataclasses.dataclass
class Server:
    """A running ``statemgr serve``."""

    config: Config
    port: int
    admin_key: str
    process: asyncio.subprocess.Process
    command: list[str]
    metrics_port: int = 0  # worker i serves metrics on it plus i, the background process on it plus workers
    exit_code: int | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """The pids of the processes that answer calls: the children of `statemgr serve` (the parent is the
        background process, which answers none), or with ``--workers 0`` the one process that does everything."""
        if self.config.workers == 0:
            return [self.process.pid]
        return procfs.children(self.process.pid)

    def background(self) -> int | None:
        """The pid of the background process; None with ``--workers 0`` (the duties run among the calls)."""
        return self.process.pid if self.config.workers else None

    def probe(self, admin: psycopg.AsyncConnection[tuple[object, ...]], db: Database) -> Probe:
        """CPU time of the serving processes, of the database's backends (the server's pools) and of the
        background process, and the events the relay has published (from the background's metrics)."""

        async def probe() -> Usage:
            backends = await procfs.backend_pids(admin, db.name)
            events = await asyncio.to_thread(self.published) if self.config.broker and self.metrics_port else None
            background = self.background()
            server, pg = procfs.cpu_seconds(self.workers()), procfs.cpu_seconds(backends)
            return Usage(server, pg, None if background is None else procfs.cpu_seconds([background]), events)

        return probe

    def published(self) -> float | None:
        """statemgr_events_published_total of the background process."""
        url = f"http://127.0.0.1:{self.metrics_port + self.config.workers}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("statemgr_events_published_total "):
                    return float(line.split()[1])
        return None


def _environment(db: Database, port: int, admin_key: str, config: Config, metrics_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMGR_")}
    env.update(
        STATEMGR_DATABASE_URL=db.url,
        STATEMGR_LISTEN=f"127.0.0.1:{port}",
        STATEMGR_ADMIN_KEY=admin_key,
        STATEMGR_REDIS_URL=REDIS_URL,
        STATEMGR_AMQP_URL=config.broker.url if config.broker else "",
        STATEMGR_AMQP_EXCHANGE=config.broker.exchange if config.broker else "statemgr.events",
        STATEMGR_METRICS_LISTEN=f"127.0.0.1:{metrics_port}" if metrics_port else "",
        STATEMGR_LOG_LEVEL=config.log_level,
        STATEMGR_SHUTDOWN_GRACE_SECONDS="1",
        STATEMGR_SHUTDOWN_DRAIN_SECONDS="0",
    )
    return env


async def flush_redis() -> None:
    """Empties the servers' Redis database: each server starts with a cold shared cache."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def running(db: Database, config: Config) -> AsyncIterator[Server]:
    """Starts ``statemgr serve --workers N``, waits until every worker listens and health says SERVING, yields
    it, then stops it with SIGTERM (SIGKILL after STOP_TIMEOUT_S)."""
    await flush_redis()
    port, admin_key = processes.free_port(), secrets.token_urlsafe(24)
    metrics_port = processes.free_port_run(config.workers + 1) if config.metrics else 0
    command = [sys.executable, "-m", "statemgr.cli", "serve", "--workers", str(config.workers)]
    with tempfile.NamedTemporaryFile("w+b", prefix="statemgr-bench-", suffix=".log") as log:
        process = await asyncio.create_subprocess_exec(
            *command,
            env={**_environment(db, port, admin_key, config, metrics_port), **dict(config.env)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        server = Server(config, port, admin_key, process, command, metrics_port)
        try:
            await _until_serving(server, pathlib.Path(log.name))
            yield server
        finally:
            server.exit_code = await _stop(process)
            await flush_redis()  # leave nothing of this run's cache behind


async def _until_serving(server: Server, log: pathlib.Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.returncode is not None:
            break
        if procfs.listeners(server.port) >= server.config.workers and await _serving(server.target):
            return
        await asyncio.sleep(0.1)
    tail = _tail(log)
    state = f"exited with code {server.process.returncode}" if server.process.returncode is not None else "timed out"
    raise RuntimeError(f"statemgr serve did not start ({state}); its output ends with:\n{tail}")


def _tail(log: pathlib.Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _serving(target: str) -> bool:
    async with grpc.aio.insecure_channel(target, options=_HEALTH) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def _stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return await process.wait()


@contextlib.asynccontextmanager
async def channels(server: Server, per_worker: int) -> AsyncIterator[list[grpc.aio.Channel]]:
    """Client channels to the server, ``per_worker`` connections on each worker.

    Workers share the port through SO_REUSEPORT, where the kernel picks a worker per *connection*: one channel
    would load one worker only, and a few random connections often load one worker more. So each channel gets a
    connection of its own, is connected with a health check, and is kept only if its worker (found through /proc:
    which worker holds the accepted socket) still needs one.
    """
    opened: list[grpc.aio.Channel] = []
    kept: list[grpc.aio.Channel] = []
    try:
        if server.config.workers <= 1:
            kept = [grpc.aio.insecure_channel(server.target)]
            opened = list(kept)
        else:
            kept = await _balanced(server, per_worker, opened)
        yield kept
    finally:
        for channel in opened:
            await channel.close()


async def _balanced(server: Server, per_worker: int, opened: list[grpc.aio.Channel]) -> list[grpc.aio.Channel]:
    workers = server.workers()
    held = {pid: 0 for pid in workers}
    kept: list[grpc.aio.Channel] = []
    for _ in range(per_worker * len(workers) * 10):
        if all(n >= per_worker for n in held.values()):
            break
        before = procfs.accepted(server.port)
        channel = grpc.aio.insecure_channel(server.target, options=_HEALTH)
        opened.append(channel)
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5.0)
        owner = _owner(workers, procfs.accepted(server.port) - before)
        if owner is not None and held[owner] < per_worker:
            held[owner] += 1
            kept.append(channel)
        else:  # its worker has enough: let the connection go now rather than sit idle on it
            opened.remove(channel)
            await channel.close()
    if not all(n >= per_worker for n in held.values()):
        print(f"warning: connections per worker: {held}", file=sys.stderr)
    return kept


def _owner(workers: list[int], new: set[int]) -> int | None:
    for pid in workers:
        if procfs.socket_inodes(pid) & new:
            return pid
    return None
