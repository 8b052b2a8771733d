"""Shared pieces of the event tests (no tests here): writers, a Subscribe collector, a RabbitMQ test queue."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterable
from typing import Any

import grpc
import pika
import psycopg

from statemgr.app import App
from statemgr.config import Settings
from statemgr.domain.events import Event, EventType
from statemgr.events import outbox
from statemgr.v1 import event_pb2
from statemgr.v1 import event_service_pb2 as es
from tests.integration.conftest import Client

STATES = ("waiting", "active")


async def append(app: App, tenant_id: uuid.UUID, conversation_id: uuid.UUID | None, hold: float = 0.0) -> str:
    """One state change's event in its own transaction; `hold` keeps the transaction open after the insert."""
    event = Event(EventType.CONVERSATION_STATE_CHANGED, conversation_id=conversation_id, conversation_state="waiting")
    async with app.db.tenant(tenant_id) as conn:
        event_id = await outbox.append(conn, tenant_id, event)
        if hold:
            await asyncio.sleep(hold)
    return str(event_id)


async def write_conversation(
    app: App, tenant_id: uuid.UUID, conversation_id: uuid.UUID, count: int, hold_every: int = 0, hold: float = 0.0
) -> list[str]:
    """`count` events of one conversation, one after another; every `hold_every`-th transaction stays open a while,
    so transactions of other writers that began later commit before it."""
    ids = []
    for i in range(count):
        held = hold if hold_every and i % hold_every == hold_every - 1 else 0.0
        ids.append(await append(app, tenant_id, conversation_id, held))
    return ids


async def deliverable(database_url: str, event_id: str) -> None:
    """Waits until the event is below the horizon (every older transaction of the cluster has ended, other tests'
    too), so a read of the log returns it. Up to a minute: on a PostgreSQL shared with other suites a bulk load can
    hold the horizon for tens of seconds."""
    query = "SELECT tx_id < pg_snapshot_xmin(pg_current_snapshot()) FROM events WHERE id = %s"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for _ in range(1200):
            row = await (await conn.execute(query, (event_id,))).fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the event never got below the horizon")


def request(
    after: str | None = None,
    from_now: bool = False,
    rooms: Iterable[uuid.UUID | str] = (),
    types: Iterable[int] = (),
) -> es.SubscribeRequest:
    req = es.SubscribeRequest(conversation_ids=[str(r) for r in rooms], event_types=list(types))
    if after is not None:
        req.after_cursor = after
    elif from_now:
        req.from_now = True
    return req


def subscribe(client: Client, req: es.SubscribeRequest) -> Any:
    """Subscribe with the client's key sent per call: conftest's channel interceptor covers unary calls only
    (grpc.aio registers an interceptor under the first of its interfaces that matches)."""
    return client.events.Subscribe(req, metadata=(("authorization", f"Bearer {client.api_key}"),))


@dataclasses.dataclass
class Collector:
    """Runs one Subscribe stream in the background and records what arrives."""

    client: Client
    req: es.SubscribeRequest
    events: list[event_pb2.Event] = dataclasses.field(default_factory=list)
    heartbeats: list[es.Heartbeat] = dataclasses.field(default_factory=list)
    error: grpc.aio.AioRpcError | None = None
    received_at: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.live = asyncio.Event()
        self._changed = asyncio.Event()
        self._call: Any = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Collector:
        self._call = subscribe(self.client, self.req)
        self._task = asyncio.create_task(self._run())
        return self

    async def started(self, timeout: float = 10.0) -> Collector:
        """Starts and waits until the stream is live (its first heartbeat)."""
        self.start()
        await asyncio.wait_for(self.live.wait(), timeout)
        return self

    @property
    def cursor(self) -> str:
        """The cursor to resume from: the last event's, or a later heartbeat's."""
        return self.heartbeats[-1].cursor if self._last_is_heartbeat else self.events[-1].cursor

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.events]

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[event_pb2.Event]:
        """Waits until `count` events arrived (or the stream failed); returns them."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count and self.error is None and not self.done:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"received {len(self.events)} of {count} events within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.events

    async def wait_error(self, timeout: float = 20.0) -> grpc.aio.AioRpcError:
        assert self._task is not None
        await asyncio.wait_for(asyncio.shield(self._task), timeout)
        assert self.error is not None, "the stream ended without an error"
        return self.error

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def stop(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        self._last_is_heartbeat = False
        try:
            async for item in self._call:
                self._record(item)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.error = exc
        finally:
            self._changed.set()

    def _record(self, item: es.SubscribeResponse) -> None:
        if item.HasField("heartbeat"):
            self.heartbeats.append(item.heartbeat)
            self._last_is_heartbeat = True
            self.live.set()
        else:
            self.events.append(item.event)
            self.received_at.setdefault(item.event.id, time.monotonic())
            self._last_is_heartbeat = False
        self._changed.set()


def assert_exactly_once_in_order(received: list[str], written: dict[Any, list[str]]) -> None:
    """Every written id arrived once, and each conversation's ids in the order they were written."""
    assert len(received) == len(set(received)), f"{len(received) - len(set(received))} duplicates"
    expected = {i for ids in written.values() for i in ids}
    assert set(received) == expected, f"missing {len(expected - set(received))}, extra {len(set(received) - expected)}"
    position = {event_id: n for n, event_id in enumerate(received)}
    for key, ids in written.items():
        assert [position[i] for i in ids] == sorted(position[i] for i in ids), f"conversation {key} out of order"


class AmqpQueue:
    """A test queue bound to the relay's exchange (both with random names), consumed with pika."""

    def __init__(self, url: str, exchange: str, binding: str = "#", arguments: dict[str, Any] | None = None) -> None:
        self.url = url
        self.exchange = exchange
        self.binding = binding
        self.arguments = arguments
        self.name = f"statemgr.test.{uuid.uuid4().hex[:10]}"
        self.messages: list[tuple[str, str, bytes]] = []  # (message_id, routing key, body)
        self.properties: list[pika.BasicProperties] = []

    def declare(self) -> None:
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(self.url))) as conn:
            channel = conn.channel()
            channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            channel.queue_declare(self.name, durable=True, arguments=self.arguments)
            channel.queue_bind(self.name, self.exchange, routing_key=self.binding)

    def drain(self, expected: set[str], timeout: float) -> set[str]:
        """Consumes until every expected message id arrived or `timeout` passed; returns the ids still missing."""
        missing = set(expected) - {m[0] for m in self.messages}
        deadline = time.monotonic() + timeout
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(self.url))) as conn:
            channel = conn.channel()
            for method, properties, body in channel.consume(self.name, auto_ack=True, inactivity_timeout=0.5):
                if method is not None:
                    self.messages.append((properties.message_id, method.routing_key, body))
                    self.properties.append(properties)
                    missing.discard(properties.message_id)
                if not missing or time.monotonic() > deadline:
                    break
            channel.cancel()
        return missing

    def delete(self) -> None:
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(self.url))) as conn:
            conn.channel().queue_delete(self.name)

    @property
    def ids(self) -> list[str]:
        return [m[0] for m in self.messages]


def delete_exchange(url: str, exchange: str) -> None:
    """Removes a test's exchange (the relay declares it; deleting a missing one is a no-op)."""
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as conn:
        conn.channel().exchange_delete(exchange)


def first_occurrences(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    return [i for i in ids if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


def shuffled(items: list[Any]) -> list[Any]:
    return random.sample(items, len(items))


class ServeProcess:
    """A real `statemgr serve` subprocess with the given settings; its JSON log lines are kept."""

    def __init__(self, settings: Settings) -> None:
        self.env = {**os.environ, **_environment(settings)}
        self.lines: list[dict[str, Any]] = []
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self, timeout: float = 20.0) -> ServeProcess:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "statemgr.cli", "serve", env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        serving = await self.wait_for_log("serving", timeout)
        self.port = int(serving["port"])
        return self

    async def wait_for_log(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if line.get("event") == event:
                    return line
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self._reader is not None and self._reader.done()):
                raise AssertionError(f"no {event!r} in the server's log: {self.lines[-5:]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs; PostgreSQL and RabbitMQ see the connections drop."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()

    async def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.returncode is None:
            self._proc.terminate()
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        if self._reader is not None:
            await self._reader

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for raw in self._proc.stderr:
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(raw))
                self._changed.set()
        self._changed.set()


def _environment(settings: Settings) -> dict[str, str]:
    env = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        env[f"STATEMGR_{field.name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env
