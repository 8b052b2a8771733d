"""``python -m bench.analytics``: AnalyticsService at scale, the rollup consumer's lag, and its cost to the writes.

Not part of ``make test``; prints figures, judges nothing. About three minutes. Three phases, each on a real
``statemgr serve`` (bench.statemgr_server) over a throwaway database:

1. Reads. One tenant's rollups for 90 days, as 1,000,000 conversations and 10,000,000 messages would leave them
   (30 agents, 400,000 customers), are **generated** into the analytics tables (not folded from events: the raw
   tables and the event log stay nearly empty; folding 10 million events here would take hours of this shared
   machine). How: numpy draws each hour's conversations, messages and durations (log-normal) with a daily
   rhythm; the histograms, customer bitmaps and per-agent rows are built exactly as the consumer builds them and
   COPYed in, the day rows as the sums of their hours. Then every analytics RPC is called over the whole 90 days
   (and a few over 7 days) sequentially: p50/p95/p99 of each.
2. Lag. Writes at 500 calls per second (open loop) for 30 s on another tenant while the consumer runs as the
   leader's duty; GetSystemHealth is sampled every 100 ms: rollup_lag is the age of the oldest event not yet
   folded, so its p99 over the samples is the lag's p99. The writes are what a WhatsApp conversation sends: for
   each outbound message, its RecordMessage and its delivered and read reports (UpdateMessageStatus), then an
   inbound RecordMessage; every one writes an event the consumer folds (the delivery funnel, response times).
   Then, as a diagnostic, the same events replayed straight into a new tenant's log at 500 per second (these 2
   cores cannot write 500/s through the service in the production configuration).
3. Cost. The same writes, open loop at 150/s (a rate the machine sustains: the p50 a caller sees) and closed loop
   (16 callers: throughput), each 15 s, on a server with the consumer and on one without
   (STATEMGR_ANALYTICS_ENABLED=false), each on a fresh database, both running side by side and measured in turns
   (`--turns`, 3) so that a change in the machine's load falls on both: throughput, p50 and the CPU per write of
   the workers, PostgreSQL and the background process, per turn and their medians. Then the consumer's own CPU
   per event, measured apart: the events of the server without it folded again from the start in this process.

`--phases` runs some of the three (e.g. `--phases cost`).
Every server runs as operators run it: 2 workers, metrics on, and the relay publishing every event to this run's
RabbitMQ exchange with confirms (bench.broker).

Environment: STATEMGR_BENCH_PG_URL (as bench: may create databases).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import itertools
import math
import statistics
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pyroaring import BitMap

from bench import broker, loadgen, procfs, statemgr_server
from statemgr.analytics import histogram
from statemgr.analytics.consumer import RollupConsumer, _pending, reset
from statemgr.analytics.fold import COUNTS, HISTOGRAMS, NIL
from statemgr.v1 import (
    analytics_service_pb2,
    analytics_service_pb2_grpc,
    conversation_pb2,
    conversation_service_pb2,
    conversation_service_pb2_grpc,
    message_pb2,
    message_service_pb2,
    message_service_pb2_grpc,
    tenant_pb2,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)

DAYS = 90
CONVERSATIONS = 1_000_000
MESSAGES = 10_000_000
AGENTS = 30
CUSTOMERS = 400_000
Metadata = tuple[tuple[str, str], ...]
FOLD_BATCHES = (150, 1000)  # events per batch: a live round's at about 300 writes/s, a catch-up's
COST_RATE = 150.0  # the write cost's open loop: a rate these 2 cores sustain in the production configuration


# --- phase 1: generated rollups -----------------------------------------------------------------------------------


def _hist(samples_us: np.ndarray) -> bytes:
    if samples_us.size == 0:
        return b""
    ms = samples_us / 1000.0
    bins = np.where(ms < 1, 0, np.minimum(histogram.BINS - 1, np.floor(np.log(np.maximum(ms, 1)) / np.log(1.1)) + 1))
    counts = np.bincount(bins.astype(np.int64), minlength=histogram.BINS)
    pairs = np.zeros(np.count_nonzero(counts), dtype=histogram.PAIR)
    pairs["bin"] = np.nonzero(counts)[0]
    pairs["count"] = counts[counts > 0]
    return pairs.tobytes()


def _lognormal(rng: np.random.Generator, n: int, median_s: float, sigma: float) -> np.ndarray:
    return (rng.lognormal(np.log(median_s), sigma, n) * 1e6).astype(np.int64)


class Rows:
    """analytics_rollups rows being generated, hour by hour, with their day sums."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.out = io.StringIO()
        self.count = 0
        self.days: dict[tuple[dt.datetime, uuid.UUID], tuple[dict[str, int], dict[str, list[bytes]]]] = {}

    def add(self, hour: dt.datetime, agent: uuid.UUID, counts: dict[str, int], hists: dict[str, bytes]) -> None:
        self._write("h", hour, agent, counts, hists)
        day_counts, day_hists = self.days.setdefault((hour.replace(hour=0), agent), ({}, {}))
        for name, value in counts.items():
            day_counts[name] = day_counts.get(name, 0) + value
        for name, blob in hists.items():
            day_hists.setdefault(name, []).append(blob)

    def finish_days(self) -> None:
        """Writes the day rows (sums of their hours) and the week rows (sums of their days, Monday first)."""
        weeks: dict[tuple[dt.datetime, uuid.UUID], tuple[dict[str, int], dict[str, list[bytes]]]] = {}
        for (day, agent), (counts, blobs) in self.days.items():
            hists = {name: _pairs(histogram.totals(parts)) for name, parts in blobs.items()}
            self._write("d", day, agent, counts, hists)
            week_counts, week_hists = weeks.setdefault((day - dt.timedelta(days=day.weekday()), agent), ({}, {}))
            for name, value in counts.items():
                week_counts[name] = week_counts.get(name, 0) + value
            for name, blob in hists.items():
                week_hists.setdefault(name, []).append(blob)
        for (week, agent), (counts, blobs) in weeks.items():
            self._write("w", week, agent, counts, {n: _pairs(histogram.totals(p)) for n, p in blobs.items()})

    def _write(
        self, grain: str, bucket: dt.datetime, agent: uuid.UUID, counts: dict[str, int], hists: dict[str, bytes]
    ) -> None:
        values = [self.tenant_id, grain, bucket.isoformat(), str(agent)]
        values += [str(counts.get(name, 0)) for name in COUNTS]
        values += ["\\\\x" + hists.get(name, b"").hex() for name in HISTOGRAMS]
        self.out.write("\t".join(values) + "\n")
        self.count += 1


def _pairs(counts: np.ndarray) -> bytes:
    pairs = np.zeros(np.count_nonzero(counts), dtype=histogram.PAIR)
    pairs["bin"] = np.nonzero(counts)[0]
    pairs["count"] = counts[counts > 0]
    return pairs.tobytes()


Sets = list[tuple[str, dt.datetime, bytes, bytes]]


def generate(tenant_id: str, end: dt.datetime, seed: int = 12) -> tuple[Rows, Sets]:
    """The rollup rows and customer sets of DAYS days ending at `end` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    hours = [end - dt.timedelta(hours=h) for h in range(DAYS * 24, 0, -1)]
    rhythm = np.array([0.3 + np.sin(np.pi * ((h.hour - 6) % 24) / 24) ** 2 for h in hours])
    opened = rng.multinomial(CONVERSATIONS, rhythm / rhythm.sum())
    messages = rng.multinomial(MESSAGES, rhythm / rhythm.sum())
    agents = [uuid.UUID(int=rng.integers(1, 2**63)) for _ in range(AGENTS)]
    rows, sets = Rows(tenant_id), []
    created_next = 0
    for index, hour in enumerate(hours):
        n_open, n_msg = int(opened[index]), int(messages[index])
        inbound = n_msg // 2
        outbound = n_msg - inbound
        durations = _lognormal(rng, n_open, 1800, 1.2)
        first = _lognormal(rng, n_open, 90, 1.0)
        response = _lognormal(rng, outbound // 2, 60, 1.1)
        delivered = _lognormal(rng, int(outbound * 0.95), 2, 0.8)
        read = _lognormal(rng, int(outbound * 0.7), 300, 1.5)
        tenant_counts = {
            "opened": n_open, "closed": n_open, "closed_inbound": inbound, "closed_outbound": outbound,
            "duration_us": int(durations.sum()), "first_response_n": n_open, "first_response_us": int(first.sum()),
            "response_n": response.size, "response_us": int(response.sum()), "inbound": inbound,
            "outbound": outbound, "late_replies": outbound // 200, "new_customers": CUSTOMERS // len(hours),
            "delivered": delivered.size, "read": read.size, "failed": outbound // 50,
            "to_delivered_n": delivered.size, "to_delivered_us": int(delivered.sum()), "to_read_n": read.size,
            "to_read_us": int(read.sum()),
        }  # fmt: skip
        tenant_hists = {
            "duration_h": _hist(durations), "first_response_h": _hist(first), "response_h": _hist(response),
            "to_delivered_h": _hist(delivered), "to_read_h": _hist(read),
        }  # fmt: skip
        rows.add(hour, NIL, tenant_counts, tenant_hists)
        _agent_rows(rows, rng, hour, agents, n_open, outbound, first, response)
        active = BitMap(rng.integers(0, CUSTOMERS, max(1, inbound // 5)).tolist())
        new = BitMap(range(created_next, created_next + CUSTOMERS // len(hours)))
        created_next += CUSTOMERS // len(hours)
        sets.append(("h", hour, active.serialize(), new.serialize()))
    rows.finish_days()
    return rows, sets + _day_sets(sets)


def _agent_rows(
    rows: Rows,
    rng: np.random.Generator,
    hour: dt.datetime,
    agents: list[uuid.UUID],
    n_open: int,
    outbound: int,
    first: np.ndarray,
    response: np.ndarray,
) -> None:
    owner_first = rng.integers(0, len(agents), first.size)
    owner_response = rng.integers(0, len(agents), response.size)
    closed = rng.multinomial(n_open, [1 / len(agents)] * len(agents))
    sent = rng.multinomial(outbound, [1 / len(agents)] * len(agents))
    for a, agent in enumerate(agents):
        f, r = first[owner_first == a], response[owner_response == a]
        counts = {
            "closed": int(closed[a]), "assigned": int(closed[a]) + 1, "transfers_in": 1, "transfers_out": 1,
            "outbound": int(sent[a]), "first_response_n": f.size, "first_response_us": int(f.sum()),
            "response_n": r.size, "response_us": int(r.sum()),
        }  # fmt: skip
        rows.add(hour, agent, counts, {"first_response_h": _hist(f), "response_h": _hist(r)})


def _day_sets(hourly: Sets) -> Sets:
    """The customer sets of days and weeks: unions of their hours'."""
    merged: dict[tuple[str, dt.datetime], tuple[BitMap, BitMap]] = {}
    for _, hour, active, created in hourly:
        day = hour.replace(hour=0)
        for key in (("d", day), ("w", day - dt.timedelta(days=day.weekday()))):
            a, c = merged.setdefault(key, (BitMap(), BitMap()))
            a |= BitMap.deserialize(active)
            c |= BitMap.deserialize(created)
    return [(grain, bucket, a.serialize(), c.serialize()) for (grain, bucket), (a, c) in merged.items()]


async def load(url: str, tenant_id: str, end: dt.datetime) -> tuple[int, float]:
    started = time.perf_counter()
    rows, sets = generate(tenant_id, end)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        columns = ", ".join(["tenant_id", "grain", "bucket", "agent_id", *COUNTS, *HISTOGRAMS])
        async with conn.cursor().copy(f"COPY analytics_rollups ({columns}) FROM STDIN") as copy:  # type: ignore[arg-type]
            await copy.write(rows.out.getvalue())
        async with conn.cursor().copy(
            "COPY analytics_customer_sets (tenant_id, grain, bucket, active, created) FROM STDIN"
        ) as copy:
            for grain, bucket, active, created in sets:
                await copy.write_row((tenant_id, grain, bucket, active, created))
        for code, n in (("131047", 9000), ("131026", 5000), ("130472", 2000)):
            await conn.execute(
                "INSERT INTO analytics_error_codes SELECT %s, 'd', d, %s, %s FROM generate_series("
                "%s::timestamptz - interval '90 days', %s::timestamptz - interval '1 day', interval '1 day') AS d",
                (tenant_id, code, n // 90, end.replace(hour=0), end.replace(hour=0)),
            )
        await conn.execute(
            "INSERT INTO analytics_open VALUES (%s, 'active', 1200), (%s, 'waiting', 80)", (tenant_id, tenant_id)
        )
        await conn.execute("ANALYZE analytics_rollups; ANALYZE analytics_customer_sets")
    return rows.count, time.perf_counter() - started


async def read_latencies(stub: Any, metadata: Metadata, end: dt.datetime, calls: int) -> dict[str, list[float]]:
    def period(days: int) -> analytics_service_pb2.TimeRange:
        out = analytics_service_pb2.TimeRange()
        out.start_time.FromDatetime(end - dt.timedelta(days=days))
        out.end_time.FromDatetime(end)
        return out

    a = analytics_service_pb2
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "GetConversationMetrics 90d": lambda: stub.GetConversationMetrics(
            a.GetConversationMetricsRequest(range=period(DAYS)), metadata=metadata
        ),
        "GetConversationVolume 90d by day (Europe/Berlin)": lambda: stub.GetConversationVolume(
            a.GetConversationVolumeRequest(
                range=period(DAYS), bucket_size=a.BUCKET_SIZE_DAY, time_zone="Europe/Berlin"
            ),
            metadata=metadata,
        ),
        "GetConversationVolume 90d by hour": lambda: stub.GetConversationVolume(
            a.GetConversationVolumeRequest(range=period(DAYS), bucket_size=a.BUCKET_SIZE_HOUR), metadata=metadata
        ),
        f"GetAgentPerformance 90d, all {AGENTS} agents": lambda: stub.GetAgentPerformance(
            a.GetAgentPerformanceRequest(range=period(DAYS)), metadata=metadata
        ),
        "GetCustomerEngagement 90d": lambda: stub.GetCustomerEngagement(
            a.GetCustomerEngagementRequest(range=period(DAYS)), metadata=metadata
        ),
        "GetConversationMetrics 7d": lambda: stub.GetConversationMetrics(
            a.GetConversationMetricsRequest(range=period(7)), metadata=metadata
        ),
        "GetSystemHealth": lambda: stub.GetSystemHealth(a.GetSystemHealthRequest(), metadata=metadata),
    }
    figures: dict[str, list[float]] = {}
    for name, call in cases.items():
        await call()  # warm: prepared statements, caches
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            await call()
            times.append((time.perf_counter() - started) * 1000)
        figures[name] = times
    return figures


# --- phases 2 and 3: writes ---------------------------------------------------------------------------------------


async def tenant(channel: grpc.aio.Channel, admin_key: str) -> Metadata:
    admin = (("authorization", f"Bearer {admin_key}"),)
    tenants = tenant_service_pb2_grpc.TenantServiceStub(channel)
    created = await tenants.CreateTenant(
        tenant_service_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="bench analytics")),
        metadata=admin,
    )
    key = await tenants.CreateApiKey(
        tenant_service_pb2.CreateApiKeyRequest(tenant_id=created.tenant.id), metadata=admin
    )
    return (("authorization", f"Bearer {key.secret}"),)


async def writer(channel: grpc.aio.Channel, metadata: Metadata) -> loadgen.Call:
    """Writes round-robin over 200 conversations, in cycles of four: an outbound RecordMessage, its delivered and
    read reports (UpdateMessageStatus), an inbound RecordMessage. Each writes an event (the hot path)."""
    conversations = conversation_service_pb2_grpc.ConversationServiceStub(channel)
    messages = message_service_pb2_grpc.MessageServiceStub(channel)
    ids = []
    for i in range(200):
        conversation = conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-bench-{uuid.uuid4().hex}-{i}")
        created = await conversations.CreateConversation(
            conversation_service_pb2.CreateConversationRequest(conversation=conversation), metadata=metadata
        )
        ids.append(created.conversation.id)
    prefix, counter = uuid.uuid4().hex[:10], itertools.count()

    async def call(i: int) -> None:
        n = next(counter)
        cycle, step = divmod(n, 4)
        if step in (1, 2):  # the reports of this cycle's outbound message (parked if they overtake its record)
            status = message_pb2.MESSAGE_STATUS_DELIVERED if step == 1 else message_pb2.MESSAGE_STATUS_READ
            report = message_service_pb2.UpdateMessageStatusRequest(
                whatsapp_message_id=f"wamid.{prefix}.{cycle}.out", status=status
            )
            await messages.UpdateMessageStatus(report, metadata=metadata)
            return
        outbound = step == 0
        message = message_pb2.Message(
            conversation_id=ids[cycle % len(ids)],
            whatsapp_message_id=f"wamid.{prefix}.{cycle}.{'out' if outbound else 'in'}",
            direction=message_pb2.MESSAGE_DIRECTION_OUTBOUND if outbound else message_pb2.MESSAGE_DIRECTION_INBOUND,
            content="hello",
        )
        await messages.RecordMessage(message_service_pb2.RecordMessageRequest(message=message), metadata=metadata)

    return call


async def lag_under_load(server: statemgr_server.Server, seconds: float) -> tuple[loadgen.Result, list[float]]:
    async with grpc.aio.insecure_channel(server.target) as channel:
        metadata = await tenant(channel, server.admin_key)
        call = await writer(channel, metadata)
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        done = asyncio.Event()
        sampler = asyncio.create_task(lag_samples(stub, metadata, done))
        result = await loadgen.run_open("writes 500/s", call, 500.0, seconds, 1000)
        done.set()
        samples = await sampler
    return result, samples


async def lag_samples(stub: Any, metadata: Metadata, done: asyncio.Event) -> list[float]:
    """rollup_lag of GetSystemHealth every 100 ms until `done` is set."""
    samples: list[float] = []
    while not done.is_set():
        health = await stub.GetSystemHealth(analytics_service_pb2.GetSystemHealthRequest(), metadata=metadata)
        samples.append(health.rollup_lag.seconds + health.rollup_lag.nanos / 1e9)
        await asyncio.sleep(0.1)
    return samples


async def injected_lag(
    server: statemgr_server.Server, db: statemgr_server.Database, rate: float, seconds: float
) -> tuple[float, list[float]]:
    """Diagnostic: the consumer's lag at ``rate`` events per second, the events written straight into a new
    tenant's log (one per transaction, as a write does) instead of through the service, which these 2 cores
    cannot drive at 500 writes/s. The events are those the service logged in the lag phase, replayed in their
    order with fresh ids (each pass over them shifts every id) and their times moved to now, so the fold does
    the same work as live. The relay publishes them as well, as it would. Returns the rate reached and the
    rollup_lag samples of the new tenant (GetSystemHealth every 100 ms)."""
    async with grpc.aio.insecure_channel(server.target) as channel:
        metadata = await tenant(channel, server.admin_key)
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        async with await psycopg.AsyncConnection.connect(db.url) as conn:
            await conn.set_autocommit(True)
            target = await (await conn.execute("SELECT id FROM tenants ORDER BY created_at DESC LIMIT 1")).fetchone()
            source = await (
                await conn.execute(
                    "SELECT type, conversation_id, payload FROM events WHERE tenant_id = ("
                    " SELECT tenant_id FROM events GROUP BY tenant_id ORDER BY count(*) DESC LIMIT 1)"
                    " ORDER BY tx_id, seq"
                )
            ).fetchall()
            assert target is not None and source
            done = asyncio.Event()
            sampler = asyncio.create_task(lag_samples(stub, metadata, done))
            start, sent = time.perf_counter(), 0
            first = dt.datetime.fromisoformat(source[0][2]["at"])
            while (elapsed := time.perf_counter() - start) < seconds:
                if sent > elapsed * rate:
                    await asyncio.sleep(sent / rate - elapsed)
                    continue
                event_type, conversation_id, payload = source[sent % len(source)]
                shift = sent // len(source)
                await conn.execute(
                    "INSERT INTO events (tenant_id, id, type, conversation_id, payload) VALUES (%s, %s, %s, %s, %s)",
                    (
                        target[0],
                        uuid.uuid4(),
                        event_type,
                        _shifted(conversation_id, shift),
                        Jsonb(_replayed(payload, shift, dt.datetime.now(dt.UTC) - first)),
                    ),
                )
                sent += 1
            reached = sent / (time.perf_counter() - start)
            await asyncio.sleep(2.0)  # the last events' lag
            done.set()
            samples = await sampler
    return reached, samples


def _shifted(value: Any, shift: int) -> Any:
    return None if value is None else uuid.UUID(int=uuid.UUID(str(value)).int ^ shift)


def _replayed(payload: dict[str, Any], shift: int, moved: dt.timedelta) -> dict[str, Any]:
    out = dict(payload)
    for name in ("message_id", "customer_id"):
        if out.get(name):
            out[name] = str(_shifted(out[name], shift))
    for name in ("at", "delivered_at", "read_at"):
        if out.get(name):
            out[name] = (dt.datetime.fromisoformat(out[name]) + moved).isoformat()
    return out


async def write_cost(
    server: statemgr_server.Server, db: statemgr_server.Database, seconds: float, rate: float
) -> tuple[loadgen.Result, loadgen.Result]:
    """One turn on one server: open loop at ``rate`` (a rate the machine sustains: its p50 is what a caller
    sees) then closed loop x16 (throughput), each with the CPU time of the workers, of the database's backends
    (the server's pools and the leader's connection: the relay's and the consumer's queries) and of the
    background process (the relay and the consumer)."""
    async with (
        grpc.aio.insecure_channel(server.target) as channel,
        await psycopg.AsyncConnection.connect(db.admin_url, autocommit=True) as admin,
    ):
        metadata = await tenant(channel, server.admin_key)
        call = await writer(channel, metadata)
        case = loadgen.Case("writes", None, "a conversation's write mix", call, probe=server.probe(admin, db))
        plan = loadgen.Plan(seconds, warmup_s=2.0, rate=rate, concurrency=16, max_outstanding=1000)
        opened, closed = await loadgen.measure(case, plan)
    return closed, opened


async def write_costs(
    servers: dict[str, tuple[statemgr_server.Server, statemgr_server.Database]],
    seconds: float,
    rate: float,
    turns: int,
) -> dict[str, list[tuple[loadgen.Result, loadgen.Result]]]:
    """write_cost on each server in turns, so that the machine's changing load falls on both alike."""
    costs: dict[str, list[tuple[loadgen.Result, loadgen.Result]]] = {label: [] for label in servers}
    for _ in range(turns):
        for label, (server, db) in servers.items():
            costs[label].append(await write_cost(server, db, seconds, rate))
    return costs


def cpu_ms_per_write(result: loadgen.Result) -> dict[str, float]:
    """CPU milliseconds per write of each part (workers, PostgreSQL, background) and in all."""
    parts = {"workers": result.server_cpu_s, "postgres": result.pg_cpu_s, "background": result.background_cpu_s}
    per = {name: 1000.0 * (value or 0.0) / max(1, result.ok) for name, value in parts.items()}
    per["all"] = sum(per.values())
    return per


def report_costs(costs: dict[str, list[tuple[loadgen.Result, loadgen.Result]]], rate: float) -> None:
    print("\n3. the hot write path (the same writes), with and without the rollup consumer, in turns")
    print(
        f"   {'server':14} {'closed x16':>10} {'p50':>8} | {'open':>4} {rate:.0f}/s {'p50':>8} {'p99':>8} |"
        " CPU ms per write (closed loop): workers + postgres + background = all"
    )
    for label, turns in costs.items():
        for closed, opened in turns:
            cpu = cpu_ms_per_write(closed)
            print(
                f"   {label:14} {closed.achieved_rate:8.0f}/s {closed.p50_ms:6.2f}ms |"
                f" {opened.achieved_rate:6.0f}/s {opened.p50_ms:6.2f}ms {opened.p99_ms:6.2f}ms |"
                f" {cpu['workers']:.3f} + {cpu['postgres']:.3f} + {cpu['background']:.3f} = {cpu['all']:.3f}"
            )
    medians = {}
    for label, turns in costs.items():
        cpu = {
            k: statistics.median(cpu_ms_per_write(c)[k] for c, _ in turns) for k in ("background", "postgres", "all")
        }
        medians[label] = (
            statistics.median(c.achieved_rate for c, _ in turns),
            statistics.median(c.p50_ms for c, _ in turns),
            statistics.median(o.p50_ms for _, o in turns),
            cpu,
        )
        rate_c, p50_c, p50_o, _ = medians[label]
        print(
            f"   median {label:14} closed x16: {rate_c:6.0f}/s p50 {p50_c:6.2f} ms | open: p50 {p50_o:6.2f} ms |"
            f" CPU {cpu['all']:.3f} ms per write"
        )
    (r1, c1, o1, cpu1), (r0, c0, o0, cpu0) = medians.values()
    print(
        f"   with / without: throughput {r1 / r0 - 1:+.1%}, closed p50 {c1 / c0 - 1:+.1%}, open p50 {o1 / o0 - 1:+.1%};"
        f" the consumer's CPU per write: background {cpu1['background'] - cpu0['background']:+.3f} ms,"
        f" postgres {cpu1['postgres'] - cpu0['postgres']:+.3f} ms, all {cpu1['all'] / cpu0['all'] - 1:+.1%}"
    )


async def fold_cost(url: str, batch: int) -> tuple[int, int, float, float]:
    """The consumer's own CPU per event, measured apart: the events the server without the consumer logged,
    folded from the start by a RollupConsumer in this process in batches of ``batch`` (the live consumer folds
    what a poll interval brought: at 300 writes/s and 0.5 s, about 150 events a batch). Returns events, batches,
    this process's CPU seconds (the consumer's Python) and its backend's (the consumer's queries)."""
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)
    try:
        await conn.execute("SET ROLE statemgr_relay")
        for cursor in await (await conn.execute("SELECT tenant_id FROM analytics_cursors")).fetchall():
            await reset(conn, cursor["tenant_id"])  # a replay from the start of the log
        row = await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone()
        backend = int(row["pid"]) if row else 0
        consumer = RollupConsumer(batch_size=batch)
        events = batches = 0
        python, pg = time.process_time(), procfs.cpu_seconds([backend])
        while True:
            folded = [await consumer.fold_batch(conn, cursor) for cursor in await _pending(conn)]
            if not any(folded):
                break
            events, batches = events + sum(folded), batches + sum(1 for n in folded if n)
        return events, batches, time.process_time() - python, procfs.cpu_seconds([backend]) - pg
    finally:
        await conn.close()


def report_folds(
    folds: list[tuple[int, int, float, float]], without: list[tuple[loadgen.Result, loadgen.Result]]
) -> None:
    write = statistics.median(cpu_ms_per_write(closed)["all"] for closed, _ in without)
    print(
        f"\n   the consumer's own CPU, folding the logged events again apart (a write logs one event; a write"
        f" costs {write:.3f} ms of CPU without the consumer):"
    )
    for events, batches, python, pg in folds:
        per = 1000.0 * (python + pg) / max(1, events)
        print(
            f"   {events:7} events in {batches:4} batches of up to {events // max(1, batches):4}:"
            f" {1000 * python / max(1, events):.3f} ms Python + {1000 * pg / max(1, events):.3f} ms PostgreSQL"
            f" = {per:.3f} ms per event ({per / write:.1%} of a write)"
        )


# --- the run -----------------------------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


@contextlib.asynccontextmanager
async def _server(
    db: statemgr_server.Database, exchange: broker.Broker, consumer: bool
) -> AsyncIterator[statemgr_server.Server]:
    environment = (("STATEMGR_ANALYTICS_ENABLED", "true" if consumer else "false"),)
    config = statemgr_server.Config(workers=2, broker=exchange, env=environment)
    async with statemgr_server.running(db, config) as server:
        yield server


async def main(calls: int, seconds: float, turns: int, phases: set[str]) -> None:
    print(f"load at start: {_uptime()}")
    if phases & {"reads", "lag"}:
        async with (
            broker.exchange() as exchange,
            statemgr_server.database() as db,
            _server(db, exchange, consumer=True) as server,
        ):
            if "reads" in phases:
                await reads(server, db, calls)
            if "lag" in phases:
                await lag(server, db, seconds)
    if "cost" in phases:
        async with (
            broker.exchange() as exchange,
            statemgr_server.database() as db,
            _server(db, exchange, consumer=True) as server,
            statemgr_server.database() as other,
            _server(other, exchange, consumer=False) as without,
        ):
            # two fresh databases: the one the reads and the lag phase filled writes at half the PostgreSQL CPU of
            # a fresh one (bench/ANALYTICS.md), which would be taken for the consumer's doing
            servers = {"with consumer": (server, db), "without": (without, other)}
            costs = await write_costs(servers, seconds, COST_RATE, turns)
            folds = [await fold_cost(other.url, batch) for batch in FOLD_BATCHES]
        report_costs(costs, COST_RATE)
        report_folds(folds, costs["without"])
    print(f"\nload at end: {_uptime()}")


async def reads(server: statemgr_server.Server, db: statemgr_server.Database, calls: int) -> None:
    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    async with grpc.aio.insecure_channel(server.target) as channel:
        metadata = await tenant(channel, server.admin_key)
        async with await psycopg.AsyncConnection.connect(db.url) as conn:
            row = await (await conn.execute("SELECT id FROM tenants ORDER BY created_at DESC LIMIT 1")).fetchone()
        assert row is not None
        count, took = await load(db.url, str(row[0]), end)
        print(f"\n1. reads over {DAYS} days: {count} rollup rows generated and loaded in {took:.0f} s")
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        metrics = await stub.GetConversationMetrics(
            analytics_service_pb2.GetConversationMetricsRequest(
                range=analytics_service_pb2.TimeRange(start_time=_ts(end - dt.timedelta(days=DAYS)), end_time=_ts(end))
            ),
            metadata=metadata,
        )
        print(
            f"   the tenant's figures: {metrics.opened_conversations} conversations opened, "
            f"{metrics.delivery.sent} outbound messages, response p90 {metrics.response.p90.ToTimedelta()}"
        )
        figures = await read_latencies(stub, metadata, end, calls)
    print(f"   {'RPC':52} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   ({calls} sequential calls each)")
    for name, times in figures.items():
        print(f"   {name:52} {statistics.median(times):8.2f} {_pct(times, 0.95):8.2f} {_pct(times, 0.99):8.2f}")


async def lag(server: statemgr_server.Server, db: statemgr_server.Database, seconds: float) -> None:
    result, samples = await lag_under_load(server, seconds * 2)
    print(f"\n2. rollup lag while writing at 500/s for {seconds * 2:.0f} s ({len(samples)} samples of rollup_lag)")
    print("   (writes: outbound RecordMessage, its delivered and read reports, inbound RecordMessage, in turn)")
    print(
        f"   writes: {result.achieved_rate:.0f}/s achieved, p50 {result.p50_ms:.2f} ms, errors {result.errors}; "
        f"lag p50 {_pct(samples, 0.5):.2f} s, p99 {_pct(samples, 0.99):.2f} s, max {max(samples):.2f} s"
    )
    reached, samples = await injected_lag(server, db, 500.0, seconds * 2)
    print(
        f"   diagnostic, events written straight into a new tenant's log at 500/s (one per transaction; the fold's"
        f" work as live): {reached:.0f} events/s reached; lag p50 {_pct(samples, 0.5):.2f} s,"
        f" p99 {_pct(samples, 0.99):.2f} s, max {max(samples):.2f} s ({len(samples)} samples)"
    )


def _ts(value: dt.datetime) -> Any:
    from google.protobuf import timestamp_pb2

    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="sequential calls per read RPC")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per write run (the lag run: twice)")
    parser.add_argument("--turns", type=int, default=3, help="turns of the write cost on each server")
    parser.add_argument(
        "--phases", default="reads,lag,cost", help="which phases to run, comma separated: reads, lag, cost"
    )
    options = parser.parse_args()
    asyncio.run(main(options.calls, options.seconds, options.turns, set(options.phases.split(","))))
