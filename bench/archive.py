"""The retention job's archive throughput, and what it costs the hot path (docs/retention.md).

    python -m bench.archive [--messages 1000000] [--rate 100] [--duration 20]
    make bench-archive

Creates a database, seeds one tenant with closed conversations past retention holding `--messages` messages (and
as many status history rows) with SQL generate_series, starts `statemgr serve` (its own retention job off), and
drives ResolveInbound and UpdateMessageStatus at `--rate` calls per second each, open loop (latency counted from
each call's scheduled time), first alone for `--duration` seconds, then while `statemgr retention run` archives
the tenant to a local folder, then alone again for `--duration` seconds. The baseline is the phase before, run
once no autovacuum worker is busy with the seeded rows; the phase after runs beside the autovacuum of the archived
rows and is shown apart. Prints the archive's rows per second and the p50/p95/p99 of both RPCs in each phase. Not
a test: figures only. The machine's load (uptime) is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import psycopg

from bench.events_latency import ADMIN_KEY, _database, _free_port, _pct, _tenant, _wait_serving
from statemgr.v1 import integration_service_pb2 as ins
from statemgr.v1 import integration_service_pb2_grpc as ins_grpc
from statemgr.v1 import message_pb2
from statemgr.v1 import message_service_pb2 as ms
from statemgr.v1 import message_service_pb2_grpc as ms_grpc

PER_CONVERSATION = 100
Call = Callable[[int], Awaitable[Any]]


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    messages: int
    rate: float
    duration: float
    job_nice: int


async def main(options: Options) -> None:
    print(f"load at start: {_load()}")
    async with _database() as url:
        async with _server(url) as target:
            tenant_id, key = await _tenant(target)
            seconds = await asyncio.to_thread(_seed, url, tenant_id, options.messages)
            print(f"seeded {options.messages:,} messages (and as many status rows) in {seconds:.0f} s")
            async with grpc.aio.insecure_channel(target) as channel:
                calls = await _calls(channel, key)
                await _quiet_vacuum(url)
                alone = await _drive(calls, options.rate, _after(options.duration))
                with tempfile.TemporaryDirectory() as archive:
                    archiving, summary = _archive(url, tenant_id, archive, options.job_nice)
                    during = await _drive(calls, options.rate, archiving)
                    rows, elapsed, output = await summary
                after = await _drive(calls, options.rate, _after(options.duration))
        print(output.strip().splitlines()[-2] if output.strip() else "(no summary)")
        print(f"archive: {rows:,} rows in {elapsed:.1f} s = {rows / elapsed:,.0f} rows/s")
        _report(alone, during, after)
    print(f"load at end: {_load()}")


def _seed(url: str, tenant_id: uuid.UUID, messages: int) -> float:
    start = time.monotonic()
    conversations = max(1, messages // PER_CONVERSATION)
    params = {"tenant_id": tenant_id, "conversations": conversations, "per": PER_CONVERSATION}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE tenants SET closed_conversation_retention = '30 days' WHERE id = %s", (tenant_id,))
        conn.execute(
            "INSERT INTO conversations (tenant_id, id, whatsapp_conversation_id, state, created_at, closed_at)"
            " SELECT %(tenant_id)s, gen_random_uuid(), 'old-' || n, 'closed', now() - interval '101 days',"
            " now() - interval '100 days' FROM generate_series(1, %(conversations)s) AS n",
            params,
        )
        conn.execute(
            "INSERT INTO messages (tenant_id, id, conversation_id, whatsapp_message_id, direction, status, content,"
            " sent_at, created_at)"
            " SELECT %(tenant_id)s, gen_random_uuid(), c.id, 'wamid.' || c.whatsapp_conversation_id || '.' || k,"
            " 'inbound', 'delivered', 'an old message of some length, number ' || k, c.created_at, c.created_at"
            " FROM conversations c CROSS JOIN generate_series(1, %(per)s) AS k WHERE c.tenant_id = %(tenant_id)s",
            params,
        )
        conn.execute(
            "INSERT INTO message_status_history (tenant_id, message_id, conversation_id, status, status_changed,"
            " status_time) SELECT tenant_id, id, conversation_id, 'delivered', true, created_at FROM messages"
            " WHERE tenant_id = %(tenant_id)s",
            params,
        )
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - start


@contextlib.asynccontextmanager
async def _server(url: str) -> AsyncIterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "STATEMGR_DATABASE_URL": url,
        "STATEMGR_LISTEN": f"127.0.0.1:{port}",
        "STATEMGR_ADMIN_KEY": ADMIN_KEY,
        "STATEMGR_REDIS_URL": "",
        "STATEMGR_AMQP_URL": "",
        "STATEMGR_METRICS_LISTEN": "",
        "STATEMGR_LOG_LEVEL": "warning",
        "STATEMGR_RETENTION_INTERVAL_SECONDS": "0",  # the bench starts the run itself
    }
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "statemgr.cli", "serve", env=env)
    target = f"127.0.0.1:{port}"
    try:
        await _wait_serving(target)
        yield target
    finally:
        proc.terminate()
        await proc.wait()


async def _calls(channel: grpc.aio.Channel, key: str) -> dict[str, Call]:
    """The two RPCs, each call `i` on its own WhatsApp id or message (outbound messages recorded beforehand)."""
    metadata = (("authorization", f"Bearer {key}"),)
    integration = ins_grpc.IntegrationServiceStub(channel)
    messages = ms_grpc.MessageServiceStub(channel)
    run = uuid.uuid4().hex[:6]
    wamids = []
    for n in range(200):
        reply = await integration.ResolveInbound(
            ins.ResolveInboundRequest(
                whatsapp_id=f"4477{n:08d}", whatsapp_message_id=f"wamid.seed.{run}.{n}", content="hi"
            ),
            metadata=metadata,
        )
        wamids.append(reply.message.whatsapp_message_id)
    statuses = (message_pb2.MESSAGE_STATUS_DELIVERED, message_pb2.MESSAGE_STATUS_READ)

    async def resolve(i: int) -> Any:
        request = ins.ResolveInboundRequest(
            whatsapp_id=f"4478{i % 5000:08d}", whatsapp_message_id=f"wamid.{run}.{i}", content=f"message {i}"
        )
        return await integration.ResolveInbound(request, metadata=metadata, timeout=60)

    async def status(i: int) -> Any:
        request = ms.UpdateMessageStatusRequest(whatsapp_message_id=wamids[i % len(wamids)], status=statuses[i % 2])
        return await messages.UpdateMessageStatus(request, metadata=metadata, timeout=60)

    return {"ResolveInbound": resolve, "UpdateMessageStatus": status}


def _after(seconds: float) -> asyncio.Future[None]:
    return asyncio.ensure_future(asyncio.sleep(seconds))


def _archive(url: str, tenant_id: uuid.UUID, folder: str, nice: int) -> tuple[asyncio.Future[Any], Awaitable[Any]]:
    """Starts `statemgr retention run` (at niceness `nice`); a future done when it ends, and its (rows, seconds,
    output)."""
    env = {
        **os.environ,
        "STATEMGR_DATABASE_URL": url,
        "STATEMGR_ARCHIVE_URL": folder,
        "STATEMGR_REDIS_URL": "",
        "STATEMGR_LOG_LEVEL": "warning",
    }
    start = time.monotonic()

    async def run() -> tuple[int, float, str]:
        proc = await asyncio.create_subprocess_exec(
            "nice", "-n", str(nice), sys.executable, "-m", "statemgr.cli", "retention", "run", "--tenant",
            str(tenant_id), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        elapsed = time.monotonic() - start
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT coalesce(sum(row_count), 0) FROM archive_objects").fetchone()
        return int(row[0]) if row else 0, elapsed, out.decode()

    task = asyncio.ensure_future(run())
    return task, task


async def _drive(calls: dict[str, Call], rate: float, until: asyncio.Future[Any]) -> dict[str, list[float]]:
    """Open loop: each RPC at `rate` per second until `until` is done; latencies (ms) from each scheduled slot."""
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    errors: dict[str, int] = dict.fromkeys(calls, 0)
    pending: set[asyncio.Task[None]] = set()

    async def one(name: str, call: Call, i: int, slot: float) -> None:
        try:
            await call(i)
            latencies[name].append((time.monotonic() - slot) * 1000)
        except grpc.aio.AioRpcError:
            errors[name] += 1

    start, i = time.monotonic(), 0
    while not until.done():
        slot = start + i / rate
        await asyncio.sleep(max(0.0, slot - time.monotonic()))
        for name, call in calls.items():
            task = asyncio.create_task(one(name, call, i, slot))
            pending.add(task)
            task.add_done_callback(pending.discard)
        i += 1
    if pending:
        await asyncio.wait(pending)
    if any(errors.values()):
        print(f"errors: {errors}")
    return latencies


async def _quiet_vacuum(url: str, bound: float = 300.0) -> None:
    """Waits until no autovacuum worker runs (the seeding's millions of rows wake it): the baseline phase is then the
    hot path alone, not the hot path beside a vacuum."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
    deadline = time.monotonic() + bound
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (await conn.execute(query)).fetchone()
            if row is None or row[0] == 0:
                return
            await asyncio.sleep(1.0)


def _report(alone: dict[str, list[float]], during: dict[str, list[float]], after: dict[str, list[float]]) -> None:
    """The target is judged against the phase before the archive; the phase after it runs beside the autovacuum of
    the rows the archive deleted (a cost of the archive too, so it is not part of the baseline) and is shown apart."""
    print(f"{'rpc':22} {'phase':16} {'calls':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name in alone:
        phases = (("alone (before)", alone[name]), ("while archiving", during[name]), ("after", after[name]))
        for phase, figures in phases:
            ordered = sorted(figures)
            p50, p95, p99 = (_pct(ordered, p) for p in (50, 95, 99))
            print(f"{name:22} {phase:16} {len(ordered):6} {p50:8.2f} {p95:8.2f} {p99:8.2f}")
        ratio = _pct(sorted(during[name]), 95) / _pct(sorted(alone[name]), 95)
        print(f"{name:22} p95 while archiving / alone before = {ratio:.2f}x (target within 1.3x)")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (nproc {os.cpu_count()})"


def _options() -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages of the tenant to archive")
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second of each RPC")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the baseline phase")
    parser.add_argument("--job-nice", type=int, default=0, help="niceness of the retention job's process")
    args = parser.parse_args()
    return Options(args.messages, args.rate, args.duration, args.job_nice)


if __name__ == "__main__":
    asyncio.run(main(_options()))
