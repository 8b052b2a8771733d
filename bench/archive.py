"""The retention job's archive throughput, and what it costs the hot path (docs/retention.md).

    python -m bench.archive [--messages 1000000] [--rate 100] [--duration 20] [--job duty|cli]
                            [--batch-messages N] [--pause-ratio R] [--job-nice N]
    make bench-archive

The server runs as operators run it (bench.statemgr_server): `statemgr serve --workers 2` beside its background
process, Redis, metrics on, the relay publishing every event to this run's RabbitMQ exchange with confirms
(bench.broker), over a throwaway migrated database; the archive store is a temporary folder.

1. Seeds one tenant with closed conversations past retention holding `--messages` messages (and as many status
   history rows) with SQL generate_series, its retention held at 10 years meanwhile so that nothing is due yet.
2. Prepares the hot path's work through the API: 500 customers with an open conversation (ResolveInbound) and
   8,000 outbound messages in their conversations (RecordMessage) to report on.
3. Drives ResolveInbound and UpdateMessageStatus at `--rate` calls per second each, open loop (latency counted from
   each call's scheduled slot, over one connection per worker), in three phases doing the same work: 1 ResolveInbound
   in 10 is a new customer, the other 9 an inbound message from the pool (round robin); UpdateMessageStatus
   reports each prepared message DELIVERED, then READ, once each, so every report changes its message (a row
   updated, a history row and an event written) as WhatsApp's receipts do.
   - before: alone for `--duration` seconds, once no autovacuum worker is busy with the seeded rows (the baseline);
   - while archiving: the tenant's retention is set to 30 days (UpdateRetentionPolicy) and the job runs; the phase
     starts when its first batch appears and ends when every seeded conversation is archived;
   - after: alone again for `--duration` seconds, beside the autovacuum of the archived rows (shown apart).

How the job runs (`--job`): `duty` (the default, as operators run it) is the leader's duty in the server's
background process, every STATEMGR_RETENTION_INTERVAL_SECONDS (5 s here, so that a run starts soon after the
retention changes; the runs before it find nothing due); `cli` is `statemgr retention run --tenant` in a process of
its own (at `--job-nice`), the server's duty switched off. `--batch-messages` and `--pause-ratio` set
STATEMGR_RETENTION_BATCH_MESSAGES and STATEMGR_RETENTION_PAUSE_RATIO for the job either way (unset: the service's
defaults).

Prints, per RPC and phase, calls, errors and p50/p95/p99; the p95 while archiving against the phase before (the
target: within 1.3x) and the phase after; the archive's rows, seconds (first batch claimed to last batch archived,
from the manifest), rows per second and batches; the configuration; the machine's load (uptime) at start and end.
Not a test: figures only.

Environment: STATEMGR_BENCH_PG_URL (may create databases), STATEMGR_BENCH_AMQP_URL, STATEMGR_BENCH_SERVER_REDIS_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import dataclasses
import datetime as dt
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc
import psycopg
from google.protobuf import duration_pb2, field_mask_pb2

from bench import broker, statemgr_server
from bench.events_latency import _pct
from statemgr.config import Settings
from statemgr.v1 import integration_service_pb2 as ins
from statemgr.v1 import integration_service_pb2_grpc as ins_grpc
from statemgr.v1 import message_pb2, tenant_pb2, tenant_service_pb2, tenant_service_pb2_grpc
from statemgr.v1 import message_service_pb2 as ms
from statemgr.v1 import message_service_pb2_grpc as ms_grpc

WORKERS = 2
PER_CONVERSATION = 100
POOL = 500  # customers with an open conversation, prepared before the first phase
NEW_EVERY = 10  # one ResolveInbound in NEW_EVERY is a new customer
REPORTED = 8_000  # outbound messages UpdateMessageStatus reports on (each twice): enough for 800 s at 20/s
STATUSES = (message_pb2.MESSAGE_STATUS_DELIVERED, message_pb2.MESSAGE_STATUS_READ)
DUTY_INTERVAL_S = 5
HELD = dt.timedelta(days=3650)  # the tenant's retention until the archive phase: nothing seeded is due
RETENTION = dt.timedelta(days=30)  # the seeded conversations closed 100 days ago
POLL_S = 0.5
STALL_S = 120.0  # the archive phase gives up when no batch moved for this long (the job failing, say)

Call = Callable[[], Awaitable[Any]]
Metadata = tuple[tuple[str, str], ...]
T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    messages: int
    rate: float
    duration: float
    job: str
    job_nice: int
    batch_messages: int | None
    pause_ratio: float | None

    def job_settings(self) -> dict[str, str]:
        """The job's settings given on the command line; the others stay the service's defaults."""
        given = {
            "STATEMGR_RETENTION_BATCH_MESSAGES": self.batch_messages,
            "STATEMGR_RETENTION_PAUSE_RATIO": self.pause_ratio,
        }
        return {name: str(value) for name, value in given.items() if value is not None}


@dataclasses.dataclass(frozen=True, slots=True)
class Phase:
    name: str
    seconds: float
    latencies: dict[str, list[float]]  # ms, per RPC
    slots: dict[str, list[float]]  # each call's scheduled time (time.monotonic), in the order of `latencies`
    errors: dict[str, collections.Counter[str]]  # per RPC, by status code


@dataclasses.dataclass(frozen=True, slots=True)
class Archived:
    rows: int
    seconds: float  # the first batch's claim to the last batch's archiving
    batches: int
    abandoned: int
    conversations: int


async def main(options: Options) -> None:
    print(f"load at start: {_uptime()}")
    with tempfile.TemporaryDirectory(prefix="statemgr-bench-archive-") as folder:
        async with statemgr_server.database() as db, broker.exchange() as exchange:
            env = _server_settings(options, folder)
            config = statemgr_server.Config(workers=WORKERS, broker=exchange, env=tuple(env.items()))
            async with statemgr_server.running(db, config) as server:
                phases, archived, cli_output = await _bench(server, db, options, folder)
    _report(phases)
    _report_archive(archived, phases[1], cli_output)
    print(_configuration(options))
    print(f"load at end: {_uptime()}")


def _server_settings(options: Options, folder: str) -> dict[str, str]:
    interval = DUTY_INTERVAL_S if options.job == "duty" else 0
    settings = {"STATEMGR_RETENTION_INTERVAL_SECONDS": str(interval), "STATEMGR_ARCHIVE_URL": folder}
    return settings | options.job_settings()


async def _bench(
    server: statemgr_server.Server, db: statemgr_server.Database, options: Options, folder: str
) -> tuple[list[Phase], Archived, str]:
    async with statemgr_server.channels(server, 1) as channels:
        tenant_id, admin, metadata = await _tenant(channels[0], server.admin_key)
        # the duty runs every few seconds from the start: nothing seeded may be due before the archive phase
        await _set_retention(channels[0], admin, tenant_id, HELD)
        seconds = await asyncio.to_thread(_seed, db.url, tenant_id, options.messages)
        print(f"seeded {options.messages:,} messages (and as many status rows) in {seconds:.0f} s")
        calls = await _prepare(channels, metadata)
        await _quiet_vacuum(db.url)
        before = await _drive("before", calls, options.rate, _after(options.duration))
        await _set_retention(channels[0], admin, tenant_id, RETENTION)
        job = _cli_job(db, tenant_id, folder, options) if options.job == "cli" else None
        await _poll(db.url, tenant_id, lambda batches, _: batches > 0, job)
        seeded = _conversations(options.messages)
        archiving = asyncio.ensure_future(_poll(db.url, tenant_id, lambda _, done: done >= seeded, job))
        during = await _drive("while archiving", calls, options.rate, archiving)
        await archiving
        _report_batches(during, await _batch_windows(db.url, tenant_id))
        cli_output = await job if job else ""
        after = await _drive("after", calls, options.rate, _after(options.duration))
    return [before, during, after], await _archived(db.url, tenant_id), cli_output


async def _tenant(channel: grpc.aio.Channel, admin_key: str) -> tuple[uuid.UUID, Metadata, Metadata]:
    """A new tenant; the admin's metadata and an API key's."""
    admin = (("authorization", f"Bearer {admin_key}"),)
    tenants = tenant_service_pb2_grpc.TenantServiceStub(channel)
    request = tenant_service_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="bench archive"))
    created = await tenants.CreateTenant(request, metadata=admin)
    key_request = tenant_service_pb2.CreateApiKeyRequest(tenant_id=created.tenant.id)
    key = await tenants.CreateApiKey(key_request, metadata=admin)
    return uuid.UUID(created.tenant.id), admin, (("authorization", f"Bearer {key.secret}"),)


async def _set_retention(
    channel: grpc.aio.Channel, admin: Metadata, tenant_id: uuid.UUID, period: dt.timedelta
) -> None:
    """Sets the tenant's closed_conversation_retention, as an operator would."""
    policy = tenant_pb2.RetentionPolicy(
        tenant_id=str(tenant_id),
        closed_conversation_retention=duration_pb2.Duration(seconds=int(period.total_seconds())),
    )
    mask = field_mask_pb2.FieldMask(paths=["closed_conversation_retention"])
    request = tenant_service_pb2.UpdateRetentionPolicyRequest(retention_policy=policy, update_mask=mask)
    await tenant_service_pb2_grpc.TenantServiceStub(channel).UpdateRetentionPolicy(request, metadata=admin)


def _conversations(messages: int) -> int:
    return max(1, messages // PER_CONVERSATION)


def _seed(url: str, tenant_id: uuid.UUID, messages: int) -> float:
    start = time.monotonic()
    params = {"tenant_id": tenant_id, "conversations": _conversations(messages), "per": PER_CONVERSATION}
    with psycopg.connect(url, autocommit=True) as conn:
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


async def _prepare(channels: list[grpc.aio.Channel], metadata: Metadata) -> dict[str, Call]:
    """The two RPCs' calls, each taking the next piece of the same work whatever the phase: the pool's customers
    and the outbound messages to report on are recorded first. Each report changes its message (DELIVERED, then
    READ, once each: a row updated, a history row and an event written), as WhatsApp's receipts do; a repeated
    report would change nothing and measure a lighter path."""
    integration = [ins_grpc.IntegrationServiceStub(channel) for channel in channels]
    messages = [ms_grpc.MessageServiceStub(channel) for channel in channels]

    async def inbound(n: int, whatsapp_id: str, whatsapp_message_id: str) -> ins.ResolveInboundResponse:
        request = ins.ResolveInboundRequest(
            whatsapp_id=whatsapp_id, whatsapp_message_id=whatsapp_message_id, content=f"message {n}"
        )
        return await integration[n % len(integration)].ResolveInbound(request, metadata=metadata, timeout=60)

    async def outbound(n: int, conversation_id: str) -> str:
        message = message_pb2.Message(
            conversation_id=conversation_id,
            whatsapp_message_id=f"wamid.reported.{n}",
            direction=message_pb2.MESSAGE_DIRECTION_OUTBOUND,
            content=f"reply {n}",
        )
        request = ms.RecordMessageRequest(message=message)
        await messages[n % len(messages)].RecordMessage(request, metadata=metadata, timeout=60)
        return message.whatsapp_message_id

    pool = [f"4478{k:08d}" for k in range(POOL)]
    opened = await _gathered(inbound(k, whatsapp_id, f"wamid.pool.{k}") for k, whatsapp_id in enumerate(pool))
    conversations = [reply.conversation.id for reply in opened]
    reported = await _gathered(outbound(k, conversations[k % len(conversations)]) for k in range(REPORTED))
    resolves, pooled, reports = itertools.count(), itertools.count(), itertools.count()

    async def resolve() -> Any:
        n = next(resolves)
        whatsapp_id = f"4479{n:08d}" if n % NEW_EVERY == 0 else pool[next(pooled) % len(pool)]
        return await inbound(n, whatsapp_id, f"wamid.bench.{n}")

    async def status() -> Any:
        n = next(reports)
        message, report = divmod(n, len(STATUSES))
        if message == len(reported):
            print(f"warning: all {REPORTED:,} messages reported on; reports from now on repeat (change nothing)")
        request = ms.UpdateMessageStatusRequest(
            whatsapp_message_id=reported[message % len(reported)], status=STATUSES[report]
        )
        return await messages[n % len(messages)].UpdateMessageStatus(request, metadata=metadata, timeout=60)

    return {"ResolveInbound": resolve, "UpdateMessageStatus": status}


async def _gathered(calls: Iterable[Awaitable[T]], width: int = 16) -> list[T]:
    """Awaits every call, at most `width` at a time, in order."""
    limit = asyncio.Semaphore(width)

    async def one(call: Awaitable[T]) -> T:
        async with limit:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))


def _after(seconds: float) -> asyncio.Future[None]:
    return asyncio.ensure_future(asyncio.sleep(seconds))


def _cli_job(db: statemgr_server.Database, tenant_id: uuid.UUID, folder: str, options: Options) -> asyncio.Task[str]:
    """`statemgr retention run --tenant` at niceness `--job-nice`, with the server's database, Redis (it invalidates
    what it archives) and archive store; its exit code and the last lines of its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMGR_")}
    env |= {
        "STATEMGR_DATABASE_URL": db.url,
        "STATEMGR_REDIS_URL": statemgr_server.REDIS_URL,
        "STATEMGR_ARCHIVE_URL": folder,
        "STATEMGR_LOG_LEVEL": "warning",
    } | options.job_settings()
    command = ["nice", "-n", str(options.job_nice), sys.executable, "-m", "statemgr.cli", "retention", "run"]

    async def run() -> str:
        proc = await asyncio.create_subprocess_exec(
            *command, "--tenant", str(tenant_id), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        tail = "\n".join(out.decode().strip().splitlines()[-2:])
        return f"statemgr retention run exited with {proc.returncode}:\n{tail}"

    return asyncio.create_task(run())


Window = tuple[float, float]  # a batch's claim to its archiving, in time.monotonic() seconds
BATCH_TAIL_S = 0.02  # after `archived_at` (its finish's transaction start): the deletes and the commit


async def _batch_windows(url: str, tenant_id: uuid.UUID) -> list[Window]:
    """When each archived batch ran (from its claim, `created_at`, to its finish, `archived_at`), on this process's
    monotonic clock."""
    query = (
        "SELECT extract(epoch FROM created_at), extract(epoch FROM archived_at) FROM archive_batches"
        " WHERE tenant_id = %s AND state = 'archived' ORDER BY created_at"
    )
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        rows = await (await conn.execute(query, (tenant_id,))).fetchall()
    offset = time.time() - time.monotonic()
    return [(float(start) - offset, float(end) - offset + BATCH_TAIL_S) for start, end in rows]


def _report_batches(during: Phase, windows: list[Window]) -> None:
    """The calls while archiving, split by whether their slot fell inside a batch or in the job's pause between
    two: the calls in the pauses are the baseline without the archive's own drift (same minutes, same tables and
    server, a warm cache), and the p95 of all the phase's calls against theirs is what archiving costs."""
    starts = [start for start, _ in windows]
    busy = sum(end - start for start, end in windows)
    print(
        f"while archiving: {len(windows)} batches busy {busy:.0f} s of {during.seconds:.0f} s"
        f" ({busy / during.seconds:.0%}); calls by where their slot fell:"
    )
    for rpc, latencies in during.latencies.items():
        split: dict[str, list[float]] = {"in a batch": [], "in a pause": []}
        for slot, latency in zip(during.slots[rpc], latencies, strict=True):
            i = bisect.bisect_right(starts, slot) - 1
            inside = i >= 0 and slot < windows[i][1]
            split["in a batch" if inside else "in a pause"].append(latency)
        for kind, values in split.items():
            p50, p95, p99 = (_pct(sorted(values), p) for p in (50, 95, 99))
            print(f"{rpc:20} {kind:16} {len(values):6} calls  p50 {p50:6.2f}  p95 {p95:6.2f}  p99 {p99:6.2f} ms")
        pause_p95 = _pct(sorted(split["in a pause"]), 95)
        all_p95 = _pct(sorted(latencies), 95)
        print(f"{rpc:20} p95 of all the phase's calls / of those in pauses = {all_p95 / pause_p95:.2f}x")


async def _poll(
    url: str, tenant_id: uuid.UUID, done: Callable[[int, int], bool], job: asyncio.Task[str] | None
) -> None:
    """Polls the tenant's archive batches (a small table) until `done(batches, conversations archived)` holds, the
    CLI's run has ended, or nothing moved for STALL_S."""
    query = (
        "SELECT count(*), coalesce(sum(conversations) FILTER (WHERE state = 'archived'), 0)"
        " FROM archive_batches WHERE tenant_id = %s"
    )
    last, since = (-1, -1), time.monotonic()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while job is None or not job.done():
            row = await (await conn.execute(query, (tenant_id,))).fetchone()
            state = (int(row[0]), int(row[1])) if row else (0, 0)
            if done(*state):
                return
            if state != last:
                last, since = state, time.monotonic()
            elif time.monotonic() - since > STALL_S:
                print(f"warning: no archive batch moved for {STALL_S:.0f} s (batches, conversations: {state})")
                return
            await asyncio.sleep(POLL_S)


async def _archived(url: str, tenant_id: uuid.UUID) -> Archived:
    """The archive's figures from its manifest."""
    query = (
        "SELECT count(*) FILTER (WHERE state = 'archived'), count(*) FILTER (WHERE state = 'abandoned'),"
        " coalesce(sum(conversations) FILTER (WHERE state = 'archived'), 0),"
        " coalesce(extract(epoch FROM max(archived_at) - min(created_at) FILTER (WHERE state = 'archived')), 0),"
        " (SELECT coalesce(sum(row_count), 0) FROM archive_objects WHERE tenant_id = %(tenant_id)s)"
        " FROM archive_batches WHERE tenant_id = %(tenant_id)s"
    )
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (await conn.execute(query, {"tenant_id": tenant_id})).fetchone()
    assert row is not None  # an aggregate without GROUP BY always answers one row
    batches, abandoned, conversations, seconds, rows = row
    return Archived(int(rows), float(seconds), int(batches), int(abandoned), int(conversations))


async def _drive(name: str, calls: dict[str, Call], rate: float, until: asyncio.Future[Any]) -> Phase:
    """Open loop: each RPC at `rate` per second until `until` is done; latencies (ms) from each scheduled slot."""
    latencies: dict[str, list[float]] = {rpc: [] for rpc in calls}
    slots: dict[str, list[float]] = {rpc: [] for rpc in calls}
    errors: dict[str, collections.Counter[str]] = {rpc: collections.Counter() for rpc in calls}
    pending: set[asyncio.Task[None]] = set()

    async def one(rpc: str, call: Call, slot: float) -> None:
        try:
            await call()
        except grpc.aio.AioRpcError as exc:
            errors[rpc][exc.code().name] += 1
            return
        latencies[rpc].append((time.monotonic() - slot) * 1000)
        slots[rpc].append(slot)

    start, i = time.monotonic(), 0
    while not until.done():
        slot = start + i / rate
        await asyncio.sleep(max(0.0, slot - time.monotonic()))
        for rpc, call in calls.items():
            task = asyncio.create_task(one(rpc, call, slot))
            pending.add(task)
            task.add_done_callback(pending.discard)
        i += 1
    seconds = time.monotonic() - start
    if pending:
        await asyncio.wait(pending)
    return Phase(name, seconds, latencies, slots, errors)


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


def _report(phases: list[Phase]) -> None:
    """The target is judged against the phase before the archive; the phase after it runs beside the autovacuum of
    the rows the archive deleted (a cost of the archive too, so it is not part of the baseline) and is shown apart."""
    print(
        f"{'rpc':20} {'phase':16} {'seconds':>7} {'calls':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    )
    for rpc in phases[0].latencies:
        for phase in phases:
            ordered = sorted(phase.latencies[rpc])
            p50, p95, p99 = (_pct(ordered, p) for p in (50, 95, 99))
            failed = sum(phase.errors[rpc].values())
            print(
                f"{rpc:20} {phase.name:16} {phase.seconds:7.1f} {len(ordered):6} {failed:6}"
                f" {p50:8.2f} {p95:8.2f} {p99:8.2f}"
            )
    for rpc in phases[0].latencies:
        before, during, after = (_pct(sorted(phase.latencies[rpc]), 95) for phase in phases)
        print(
            f"{rpc:20} p95 while archiving / before = {during / before:.2f}x (target within 1.3x),"
            f" / after = {during / after:.2f}x"
        )
    for phase in phases:
        for rpc, codes in phase.errors.items():
            if codes:
                print(f"errors of {rpc} {phase.name}: {dict(codes)}")


def _report_archive(archived: Archived, during: Phase, cli_output: str) -> None:
    if cli_output:
        print(cli_output)
    rate = f"{archived.rows / archived.seconds:,.0f}" if archived.seconds > 0 else "-"
    print(
        f"archive: {archived.rows:,} rows of {archived.conversations:,} conversations in {archived.seconds:.1f} s"
        f" (first batch claimed to last archived) = {rate} rows/s; {archived.batches} batches,"
        f" {archived.abandoned} abandoned; the phase while archiving lasted {during.seconds:.1f} s"
    )


def _configuration(options: Options) -> str:
    defaults = Settings()
    batch = options.batch_messages or f"{defaults.retention_batch_messages} (default)"
    pause = options.pause_ratio if options.pause_ratio is not None else f"{defaults.retention_pause_ratio} (default)"
    if options.job == "duty":
        job = f"duty (the leader's, in the background process, every {DUTY_INTERVAL_S} s)"
    else:
        job = f"cli (statemgr retention run --tenant, nice {options.job_nice})"
    return (
        f"configuration: {WORKERS} workers + the background process; relay to RabbitMQ with confirms; Redis"
        f" {statemgr_server.REDIS_URL}; metrics on; job {job}; batches of at most {batch} messages and"
        f" {defaults.retention_batch_size} conversations; pause ratio {pause}"
    )


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _options() -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages of the tenant to archive")
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second of each RPC")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the phases before and after")
    parser.add_argument("--job", choices=("duty", "cli"), default="duty", help="the leader's duty, or the CLI")
    parser.add_argument("--job-nice", type=int, default=0, help="niceness of the CLI's process (--job cli)")
    parser.add_argument("--batch-messages", type=int, help="STATEMGR_RETENTION_BATCH_MESSAGES (default: the service's)")
    parser.add_argument("--pause-ratio", type=float, help="STATEMGR_RETENTION_PAUSE_RATIO (default: the service's)")
    args = parser.parse_args()
    if args.job_nice and args.job != "cli":
        parser.error("--job-nice applies to --job cli only: the duty runs in the server's background process")
    return Options(
        args.messages, args.rate, args.duration, args.job, args.job_nice, args.batch_messages, args.pause_ratio
    )


if __name__ == "__main__":
    asyncio.run(main(_options()))
