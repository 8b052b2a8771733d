"""``python -m bench.fanout``: Subscribe fan-out on one server process, and a reconnect storm.

A real ``statemgr serve --workers 1`` in the production configuration (bench.statemgr_server: relay to this run's
RabbitMQ exchange, metrics on) on a throwaway database. This process holds every stream; the writer runs in a
process of its own (spawned), so that its latency is the server's and not this process's loop, busy receiving
thousands of deliveries a second. Both time on CLOCK_MONOTONIC (time.perf_counter), one clock for the machine.

1. baseline: the writer alone, TransitionConversation at ``--rate`` changes per second (open loop, round-robin over
   the conversations): its p50/p95 with no subscriber;
2. fan-out: ``--streams`` Subscribe streams (half on the whole tenant, half on one conversation each), all live,
   and the writer again: its p50/p95 now, each delivery's latency from the moment the writer's call returned, the
   deliveries missing, and the server's CPU per delivery;
3. storm: those streams closed, ``--storm`` streams opened at once (as clients reconnect after a restart): how long
   until every one is live (has its first heartbeat), and which failed with which code.

The generator decodes every delivery on the same machine: its CPU is printed too. Figures are printed, never
judged.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import multiprocessing
import sys
import time
from collections.abc import AsyncIterator, Sequence

import grpc

from bench import broker, procfs, report, scenarios, statemgr_server
from bench.scenarios import Context, Metadata
from statemgr.v1 import (
    conversation_pb2,
    conversation_service_pb2,
    conversation_service_pb2_grpc,
    event_service_pb2,
    event_service_pb2_grpc,
)

STREAMS_PER_CHANNEL = 100
LIVE_TIMEOUT_S = 60.0
DRAIN_S = 5.0
STATES = (conversation_pb2.CONVERSATION_STATE_WAITING, conversation_pb2.CONVERSATION_STATE_ACTIVE)


@dataclasses.dataclass(frozen=True)
class Options:
    streams: int
    rate: float
    duration: float
    storm: int


class Clock:
    """When each change returned to the writer, and when each stream received it."""

    def __init__(self) -> None:
        self.returned: dict[str, float] = {}
        self.received: list[tuple[str, float]] = []

    def latencies_ms(self) -> list[float]:
        return sorted((at - self.returned[cid]) * 1000 for cid, at in self.received if cid in self.returned)


def _pct(values: Sequence[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")


class Writer:
    """TransitionConversation back and forth, round-robin over the conversations, at a fixed rate."""

    def __init__(self, stub: conversation_service_pb2_grpc.ConversationServiceStub, metadata: Metadata) -> None:
        self.stub = stub
        self.metadata = metadata
        self.moves: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()

    async def run(self, ids: Sequence[str], rate: float, duration: float, clock: Clock) -> list[float]:
        """Writes for ``duration`` seconds; the latencies (ms) of the calls that succeeded, sorted."""
        latencies: list[float] = []
        start, count = time.perf_counter(), int(rate * duration)
        calls = []
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            calls.append(asyncio.create_task(self._move(ids[n % len(ids)], start + n / rate, latencies, clock)))
        await asyncio.gather(*calls)
        return sorted(latencies)

    async def _move(self, conversation_id: str, slot: float, latencies: list[float], clock: Clock) -> None:
        state = STATES[self.moves[conversation_id] % 2]
        self.moves[conversation_id] += 1
        request = conversation_service_pb2.TransitionConversationRequest(
            conversation_id=conversation_id, state=state, reason="bench"
        )
        clock.returned.pop(conversation_id, None)
        try:
            await self.stub.TransitionConversation(request, metadata=self.metadata, timeout=10)
        except grpc.aio.AioRpcError as exc:
            self.errors[exc.code().name] += 1
            return
        now = time.perf_counter()
        clock.returned[conversation_id] = now
        latencies.append((now - slot) * 1000)


class Streams:
    """Subscribe streams from now on, each noting its deliveries in the clock and when it went live."""

    def __init__(self, target: str, metadata: Metadata, clock: Clock) -> None:
        self.target = target
        self.metadata = metadata
        self.clock = clock
        self.channels: list[grpc.aio.Channel] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.live: list[float] = []
        self.failed: collections.Counter[str] = collections.Counter()
        self.deliveries = 0

    def open(self, rooms: Sequence[str | None]) -> None:
        """One stream per entry: None for the whole tenant, else that conversation only."""
        for n, room in enumerate(rooms):
            if n % STREAMS_PER_CHANNEL == 0:
                options = (("grpc.use_local_subchannel_pool", 1),)
                self.channels.append(grpc.aio.insecure_channel(self.target, options=options))
            stub = event_service_pb2_grpc.EventServiceStub(self.channels[-1])
            request = event_service_pb2.SubscribeRequest(from_now=True, conversation_ids=[room] if room else [])
            self.tasks.append(asyncio.create_task(self._follow(stub, request, time.perf_counter())))

    async def _follow(
        self, stub: event_service_pb2_grpc.EventServiceStub, request: event_service_pb2.SubscribeRequest, t0: float
    ) -> None:
        went_live = False
        try:
            async for item in stub.Subscribe(request, metadata=self.metadata):
                if item.HasField("event"):
                    self.deliveries += 1
                    self.clock.received.append((item.event.conversation_id, time.perf_counter()))
                elif not went_live:
                    went_live = True
                    self.live.append(time.perf_counter() - t0)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED or not went_live:
                self.failed[exc.code().name] += 1

    async def until_live(self, count: int, timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while len(self.live) < count and time.perf_counter() < deadline:
            if sum(self.failed.values()) + len(self.live) >= count:
                break
            await asyncio.sleep(0.05)
        return len(self.live) >= count

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for channel in self.channels:
            await channel.close()


@dataclasses.dataclass
class Written:
    """What a writer's process sends back."""

    latencies: list[float]  # ms, sorted
    returned: dict[str, float]  # conversation id -> when its last change returned (time.perf_counter)
    moves: dict[str, int]  # changes made to each conversation so far (the next one goes the other way)
    errors: dict[str, int]


def _write_in_process(
    target: str, metadata: Metadata, ids: list[str], rate: float, duration: float, moves: dict[str, int]
) -> Written:
    """The body of the writer's process."""

    async def write() -> Written:
        async with _channel(target) as channel:
            writer = Writer(conversation_service_pb2_grpc.ConversationServiceStub(channel), metadata)
            writer.moves.update(moves)
            clock = Clock()
            took = await writer.run(ids, rate, duration, clock)
            return Written(took, clock.returned, dict(writer.moves), dict(writer.errors))

    return asyncio.run(write())


class RemoteWriter:
    """Writer.run in a spawned process of its own (no grpc state crosses a fork), one run after another."""

    def __init__(self, target: str, metadata: Metadata) -> None:
        self.target = target
        self.metadata = metadata
        self.moves: dict[str, int] = {}  # a move to the state a conversation is in already makes no event

    async def run(self, ids: Sequence[str], rate: float, duration: float, clock: Clock) -> list[float]:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            args = (self.target, self.metadata, list(ids), rate, duration, self.moves)
            written: Written = await asyncio.to_thread(pool.apply_async(_write_in_process, args).get, duration + 60)
        self.moves = written.moves
        clock.returned.update(written.returned)
        if written.errors:
            print(f"writer errors: {written.errors}")
        return written.latencies


async def _conversations(ctx: Context, metadata: Metadata, count: int) -> list[str]:
    stub = conversation_service_pb2_grpc.ConversationServiceStub(ctx.channels[0])
    made = await scenarios.create_conversations(stub, metadata, "fanout", count)
    return [c.id for c in made]


async def _fan_out(target: str, o: Options, metadata: Metadata, ids: list[str], writer: RemoteWriter, pid: int) -> None:
    clock = Clock()
    streams = Streams(target, metadata, clock)
    wide = o.streams // 2
    streams.open([None] * wide + [ids[n % len(ids)] for n in range(o.streams - wide)])
    if not await streams.until_live(o.streams, LIVE_TIMEOUT_S):
        print(f"only {len(streams.live)} of {o.streams} streams went live; failed: {dict(streams.failed)}")
    cpu, gen = procfs.cpu_seconds([pid]), time.process_time()
    took = await writer.run(ids, o.rate, o.duration, clock)
    await asyncio.sleep(DRAIN_S)
    cpu, gen = procfs.cpu_seconds([pid]) - cpu, time.process_time() - gen
    delivered = clock.latencies_ms()
    expected = len(took) * (wide + 1)
    print(f"fan-out: {o.streams} streams ({wide} on the tenant, {o.streams - wide} on one conversation each)")
    print(f"  writer p50 {_pct(took, 50):.2f} ms  p95 {_pct(took, 95):.2f} ms  ({len(took)} changes)")
    print(f"  deliveries {len(delivered)} of {expected} expected; latency from the writer's return:")
    print(f"    p50 {_pct(delivered, 50):.1f} ms  p95 {_pct(delivered, 95):.1f} ms  p99 {_pct(delivered, 99):.1f} ms")
    if delivered:
        print(f"  server CPU {cpu:.2f} s: {cpu / len(delivered) * 1e6:.0f} us per delivery; generator CPU {gen:.2f} s")
    await streams.close()


async def _storm(target: str, o: Options, metadata: Metadata, ids: list[str]) -> None:
    streams = Streams(target, metadata, Clock())
    started = time.perf_counter()
    streams.open([None if n % 2 else ids[n % len(ids)] for n in range(o.storm)])
    all_live = await streams.until_live(o.storm, LIVE_TIMEOUT_S)
    took = time.perf_counter() - started
    live = sorted(streams.live)
    verdict = f"all live in {took:.1f} s" if all_live else f"{len(live)} live after {took:.1f} s"
    print(f"storm: {o.storm} streams opened at once: {verdict}; failed: {dict(streams.failed) or 'none'}")
    if live:
        print(f"  time to live p50 {_pct(live, 50):.2f} s  p99 {_pct(live, 99):.2f} s  max {live[-1]:.2f} s")
    await streams.close()


async def main(o: Options) -> None:
    print(f"load average at start: {report.load_average()}")
    async with statemgr_server.database() as db, broker.exchange() as exchange:
        config = statemgr_server.Config(workers=1, broker=exchange)
        async with statemgr_server.running(db, config) as server, _channel(server.target) as channel:
            ctx = Context([channel], server.admin_key, 0)
            metadata = await scenarios.new_tenant(ctx)
            ids = await _conversations(ctx, metadata, max(o.streams - o.streams // 2, 1))
            writer = RemoteWriter(server.target, metadata)
            alone = await writer.run(ids, o.rate, o.duration, Clock())
            print(f"baseline: writer alone at {o.rate:g}/s: p50 {_pct(alone, 50):.2f} ms  p95 {_pct(alone, 95):.2f} ms")
            pid = server.workers()[0]
            await _fan_out(server.target, o, metadata, ids, writer, pid)
            await _storm(server.target, o, metadata, ids)
    print(f"load average at end: {report.load_average()}")


@contextlib.asynccontextmanager
async def _channel(target: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(target) as channel:
        yield channel


def _options() -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    p.add_argument("--streams", type=int, default=1_000)
    p.add_argument("--rate", type=float, default=20.0, help="changes per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of writing per phase")
    p.add_argument("--storm", type=int, default=2_000, help="streams opened at once in the last phase")
    a = p.parse_args()
    return Options(a.streams, a.rate, a.duration, a.storm)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(_options()))
    sys.exit(0)
