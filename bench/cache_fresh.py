"""Cached lookups with the read-after-write guarantee, beside the figures without it, in one run.

    python -m bench.cache_fresh                 # about 2 minutes: 2 configurations x (1 and 2 workers) x 2 loops
    python -m bench.cache_fresh --quick         # 2 s points
    make bench-cache-fresh

LookupConversation by WhatsApp id, spread evenly (uniformly at random) over 5,000 conversations made in setup and
read once each before measuring, so every measured call is a cache hit in Redis or in the in-process tier. Two
server configurations, each on a `statemgr serve` of its own (bench.statemgr_server) on one throwaway database:

- **guarantee**: the defaults (no in-process tier: every read asks Redis, in the batch of its loop turn);
- **no guarantee**: `STATEMGR_CACHE_LOCAL_MAX_ENTRIES=10000` (the previous default: an in-process LRU of 3 s that
  other processes' writes reach only over pub/sub, so it may answer a state older than a write that returned).

Closed loops: one call at a time (latency) and 32 in flight (the most calls per second), at 1 worker; 32 in
flight at 2 workers; with server CPU per call read from /proc (bench.procfs). Prints a table and writes
bench/CACHE_FRESH.md with the machine's load. Not a test: it never passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import pathlib
import random
import subprocess
import sys
import uuid
from collections.abc import Sequence

import grpc
import psycopg

from bench import loadgen, report, statemgr_server
from bench.loadgen import Call, Case, Plan, Result
from bench.scenarios import (
    RPC_TIMEOUT_S,
    Context,
    Metadata,
    _gather_limited,
    _stubs,
    create_conversations,
    new_tenant,
)
from bench.statemgr_server import Config
from statemgr.v1 import conversation_service_pb2, conversation_service_pb2_grpc

CONVERSATIONS = 5_000
CHANNELS_PER_WORKER = 4
OUTPUT = pathlib.Path(__file__).with_name("CACHE_FRESH.md")
NO_GUARANTEE = (("STATEMGR_CACHE_LOCAL_MAX_ENTRIES", "10000"),)


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    config: Config


VARIANTS = (
    Variant("guarantee, 1 worker", Config(workers=1)),
    Variant("no guarantee (in-process tier), 1 worker", Config(workers=1, env=NO_GUARANTEE)),
    Variant("guarantee, 2 workers", Config(workers=2)),
    Variant("no guarantee (in-process tier), 2 workers", Config(workers=2, env=NO_GUARANTEE)),
)


@dataclasses.dataclass(frozen=True)
class Lookups:
    """Conversations made and cached in setup, and the lookups that read them."""

    metadata: Metadata
    requests: list[conversation_service_pb2.LookupConversationRequest]

    def through(self, *channels: grpc.aio.Channel) -> Call:
        """LookupConversation by WhatsApp id, uniformly at random, calls spread over `channels`."""
        stubs = [conversation_service_pb2_grpc.ConversationServiceStub(channel) for channel in channels]
        requests, metadata, pick = self.requests, self.metadata, random.Random(42)

        async def call(i: int) -> None:
            request = requests[pick.randrange(len(requests))]
            await stubs[i % len(stubs)].LookupConversation(request, metadata=metadata, timeout=RPC_TIMEOUT_S)

        return call


async def lookups(ctx: Context, conversations: int) -> Lookups:
    """Makes `conversations` and reads each once, so every one is cached before measuring."""
    metadata: Metadata = await new_tenant(ctx)
    stubs = _stubs(conversation_service_pb2_grpc.ConversationServiceStub, ctx)
    made = await create_conversations(stubs[0], metadata, uuid.uuid4().hex[:12], conversations)
    requests = [
        conversation_service_pb2.LookupConversationRequest(whatsapp_conversation_id=c.whatsapp_conversation_id)
        for c in made
    ]

    async def warm(n: int) -> bool:
        await stubs[n % len(stubs)].LookupConversation(requests[n], metadata=metadata, timeout=RPC_TIMEOUT_S)
        return True

    await _gather_limited(len(requests), warm)
    return Lookups(metadata, requests)


async def measure(variant: Variant, plans: Sequence[Plan], conversations: int) -> list[Result]:
    """Each plan's closed loop on one server of this variant (the concurrency is the plan's)."""
    async with (
        statemgr_server.database() as db,
        await psycopg.AsyncConnection.connect(db.admin_url, autocommit=True) as admin,
        statemgr_server.running(db, variant.config) as server,
        statemgr_server.channels(server, CHANNELS_PER_WORKER) as channels,
    ):
        call = (await lookups(Context(channels, server.admin_key, 0), conversations)).through(*channels)
        case = Case(
            variant.name, None, "cached LookupConversation", call, modes=("closed",), probe=server.probe(admin, db)
        )
        return [result for plan in plans for result in await loadgen.measure(case, plan)]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(results: Sequence[Result]) -> list[str]:
    rows = [
        "| configuration | in flight | p50 ms | p95 ms | p99 ms | calls/s | errors | server CPU ms/call | rest |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        loop = f"c={r.concurrency}"
        per_call = None if r.server_cpu_s is None or not r.ok else r.server_cpu_s * 1000 / r.ok
        rest = None if r.rest_cpu_s is None else r.rest_cpu_s / r.elapsed_s
        rows.append(
            f"| {r.name} | {loop} | {r.p50_ms:.2f} | {r.p95_ms:.2f} | {r.p99_ms:.2f} | {r.achieved_rate:,.0f} | "
            f"{r.error_count} | {_ms(per_call)} | {_ms(rest)} cores |"
        )
    return rows


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_fresh", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s points, 0.3 s warm-up")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    args = parser.parse_args(argv)
    duration, warmup = (2.0, 0.3) if args.quick else (5.0, 0.5)
    latency, throughput = (Plan(duration, warmup, None, c, 1000) for c in (1, args.concurrency))
    load_before = report.load_average()
    results: list[Result] = []
    for variant in VARIANTS:
        print(f"{variant.name} ...", file=sys.stderr)
        plans = (latency, throughput) if variant.config.workers == 1 else (throughput,)
        results.extend(await measure(variant, plans, args.conversations))
    lines = [
        "# Cached lookups with and without the read-after-write guarantee",
        "",
        f"`python -m bench.cache_fresh {' '.join(argv)}` at {_commit()}, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs; load average before "
        f"{load_before}, after {report.load_average()}. {args.conversations:,} conversations, lookups uniformly "
        f"at random among them, every one cached before measuring; {duration:.0f} s per point.",
        "",
        *table(results),
        "",
        "Server CPU is the workers' own (/proc), per successful call; the rest of the machine is everything else",
        "that ran meanwhile (the generator excluded): other people's work on a shared machine shows there.",
    ]
    print("\n".join(lines))
    OUTPUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
