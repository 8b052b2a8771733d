"""Publishing batches to RabbitMQ with publisher confirms and the mandatory flag (pika's asyncio adapter).

Why the asyncio adapter and not BlockingConnection in a thread: with the blocking adapter every confirmed publish
waits for its own Basic.Ack, one round trip per event; here a whole batch is written at once and its confirms
(often one Basic.Ack with `multiple`) are awaited together, on the server's event loop, with no thread to hand
work to or to unblock at shutdown. pika does no blocking I/O on this adapter: it is callback-driven over
loop.add_reader/add_writer, and this module turns its callbacks into awaitables.

Outcome of a batch, per event: confirmed (Basic.Ack), returned (Basic.Return then Basic.Ack: no queue bound for
its routing key) or failed (Basic.Nack, or no confirm before the connection was lost or the timeout passed).
A failed event may still have reached the broker, so retrying it can duplicate it, always with the same
message_id; an event is reported confirmed only after its Basic.Ack.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pika
import structlog
from pika import spec
from pika.adapters.asyncio_connection import AsyncioConnection

_log = structlog.get_logger("statemgr.events.publisher")

CONTENT_TYPE = "application/x-protobuf"
_OPEN_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 2.0


class PublisherError(Exception):
    """RabbitMQ is unreachable, refused us, or the connection broke."""


@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    """One message; `key` is the caller's handle for it (the event's seq)."""

    key: int
    message_id: str
    routing_key: str
    type: str
    body: bytes
    timestamp: int


@dataclasses.dataclass(slots=True)
class Outcome:
    confirmed: list[int] = dataclasses.field(default_factory=list)
    returned: list[int] = dataclasses.field(default_factory=list)
    failed: list[int] = dataclasses.field(default_factory=list)


class AmqpPublisher:
    """One connection and one confirm-mode channel to a durable topic exchange, opened on demand."""

    def __init__(self, url: str, exchange: str, confirm_timeout: float = 10.0) -> None:
        self._url = url
        self._exchange = exchange
        self._confirm_timeout = confirm_timeout
        self._connection: Any = None
        self._channel: Any = None
        # _lost: the channel or the connection is gone (publishing must stop); _closed: the connection (and its
        # socket) is closed. A channel closes before its connection does, so `close` waits for the latter.
        self._lost: asyncio.Future[BaseException] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._batch: _Batch | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._tag = 0

    @property
    def connected(self) -> bool:
        return self._channel is not None and self._lost is not None and not self._lost.done()

    async def connect(self) -> None:
        """Opens the connection and channel, declares the exchange, turns on confirms; PublisherError on failure.

        A caller cancelled meanwhile (shutdown) leaves the handshake to finish and `close` to end it: aborting a
        handshake half-way trips an assertion inside pika and can leak the socket.
        """
        await self.close()
        task = self._connecting = asyncio.ensure_future(self._open())
        await asyncio.shield(task)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost = loop.create_future()
        self._closed = loop.create_future()
        self._tag = 0
        try:
            await self._open_connection(loop)
            self._channel = await self._rpc(lambda done: self._connection.channel(on_open_callback=done))
            self._channel.add_on_close_callback(self._on_channel_closed)
            self._channel.add_on_return_callback(self._on_return)
            await self._rpc(self._declare_exchange)
            await self._rpc(lambda done: self._channel.confirm_delivery(self._on_confirm, callback=done))
        except BaseException:
            await self._shut()
            raise

    async def publish(self, messages: Sequence[Outgoing]) -> Outcome:
        """Sends every message, then waits for their confirms (or loss of the connection, or the timeout)."""
        if not self.connected:
            raise PublisherError("not connected")
        if not messages:
            return Outcome()
        batch = self._batch = _Batch(asyncio.get_running_loop())
        for message in messages:
            self._send(batch, message)
        await self._until(batch.done, self._confirm_timeout)
        self._batch = None
        if not batch.done.done():
            _log.warning("amqp_confirms_missing", unconfirmed=len(batch.pending))
            await self.close()
        return batch.outcome()

    async def close(self) -> None:
        """Closes the connection (gracefully, else by aborting the socket); a no-op when not connected."""
        task, self._connecting = self._connecting, None
        if task is not None:
            await asyncio.wait({task}, timeout=_OPEN_TIMEOUT)
            if task.done() and not task.cancelled():
                task.exception()  # seen: a failed connect is reported to its caller, if it is still there
        await self._shut()

    async def _shut(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is None or connection.is_closed:
            return
        closed = self._closed
        if not connection.is_closing:
            connection.close()
        if closed is not None:
            await asyncio.wait({closed}, timeout=_CLOSE_TIMEOUT)
            if not closed.done():
                # pika has no public abort; a broker that stopped answering would otherwise hold the socket until
                # the AMQP heartbeat times out.
                connection._adapter_disconnect_stream()
                await asyncio.wait({closed}, timeout=_CLOSE_TIMEOUT)

    async def _open_connection(self, loop: asyncio.AbstractEventLoop) -> None:
        """Starts the connection (held in self._connection at once, so `close` can abort a handshake in progress)."""
        opened: asyncio.Future[None] = loop.create_future()
        params = pika.URLParameters(self._url)
        params.connection_attempts = 1
        params.socket_timeout = _OPEN_TIMEOUT

        def on_open(_connection: Any) -> None:
            if not opened.done():
                opened.set_result(None)

        def on_error(_connection: Any, exc: BaseException) -> None:
            self._set_lost(exc)
            self._set_closed()

        self._connection = AsyncioConnection(
            params,
            on_open_callback=on_open,
            on_open_error_callback=on_error,
            on_close_callback=self._on_connection_closed,
            custom_ioloop=loop,
        )
        try:
            await self._until(opened, _OPEN_TIMEOUT)
        finally:
            opened.cancel()  # no-op once done
        if not opened.done() or opened.cancelled():
            lost = self._lost
            reason = lost.result() if lost is not None and lost.done() else TimeoutError("no answer")
            raise PublisherError(f"cannot connect to RabbitMQ: {reason!r}")

    def _declare_exchange(self, done: Callable[[Any], None]) -> None:
        self._channel.exchange_declare(exchange=self._exchange, exchange_type="topic", durable=True, callback=done)

    async def _rpc(self, start: Callable[[Callable[[Any], None]], None]) -> Any:
        """Starts a pika operation that reports through a callback and waits for it, or for the connection's loss."""
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(value: Any) -> None:
            if not result.done():
                result.set_result(value)

        start(done)
        await self._until(result, _OPEN_TIMEOUT)
        if result.done():
            return result.result()
        lost = self._lost
        reason = lost.result() if lost is not None and lost.done() else TimeoutError("no answer from RabbitMQ")
        raise PublisherError(f"RabbitMQ refused or dropped the channel: {reason!r}")

    async def _until(self, future: asyncio.Future[Any], seconds: float) -> None:
        """Waits for `future`, the loss of the connection, or the timeout, whichever comes first."""
        waiting: set[asyncio.Future[Any]] = {future}
        if self._lost is not None:
            waiting.add(self._lost)
        await asyncio.wait(waiting, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)

    def _send(self, batch: _Batch, message: Outgoing) -> None:
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message.message_id,
            type=message.type,
            timestamp=message.timestamp,
            app_id="statemgr",
        )
        self._tag += 1
        batch.pending[self._tag] = message
        self._channel.basic_publish(self._exchange, message.routing_key, message.body, properties, mandatory=True)

    def _on_confirm(self, frame: Any) -> None:
        if self._batch is not None:
            method = frame.method
            self._batch.settle(method.delivery_tag, method.multiple, isinstance(method, spec.Basic.Nack))

    def _on_return(self, _channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
        if self._batch is not None:
            self._batch.returned.add(properties.message_id)

    def _on_connection_closed(self, _connection: Any, reason: BaseException) -> None:
        self._set_lost(reason)
        self._set_closed()

    def _on_channel_closed(self, _channel: Any, reason: BaseException) -> None:
        if not isinstance(reason, pika.exceptions.ChannelClosedByClient):
            _log.warning("amqp_channel_closed", reason=repr(reason))
        self._set_lost(reason)
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _set_lost(self, reason: BaseException) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)

    def _set_closed(self) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)


class _Batch:
    """Messages sent and not yet settled, by delivery tag."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.pending: dict[int, Outgoing] = {}
        self.acked: list[Outgoing] = []
        self.nacked: list[Outgoing] = []
        self.returned: set[str] = set()
        self.done: asyncio.Future[None] = loop.create_future()

    def settle(self, tag: int, multiple: bool, nack: bool) -> None:
        tags = [t for t in self.pending if t <= tag] if multiple else [tag]
        for settled in tags:
            message = self.pending.pop(settled, None)
            if message is not None:
                (self.nacked if nack else self.acked).append(message)
        if not self.pending and not self.done.done():
            self.done.set_result(None)

    def outcome(self) -> Outcome:
        outcome = Outcome(failed=[m.key for m in self.nacked] + [m.key for m in self.pending.values()])
        for message in self.acked:
            (outcome.returned if message.message_id in self.returned else outcome.confirmed).append(message.key)
        return outcome
