"""The RabbitMQ side of a run: an exchange and a bounded queue of this run's own, removed at the end.

The servers relay to the exchange with publisher confirms, as in production; the queue (bound to every routing key,
capped at QUEUE_LIMIT messages, oldest dropped) is there so that events are routed and stored, not returned as
unroutable, which is what a deployment with a consumer does. Nothing reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator

import pika

URL = os.environ.get("STATEMGR_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
QUEUE_LIMIT = 200_000


@dataclasses.dataclass(frozen=True)
class Broker:
    url: str
    exchange: str


def _declare(broker: Broker, queue: str) -> None:
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(broker.url))) as conn:
        channel = conn.channel()
        channel.exchange_declare(broker.exchange, exchange_type="topic", durable=True)
        arguments = {"x-max-length": QUEUE_LIMIT, "x-overflow": "drop-head"}
        channel.queue_declare(queue, durable=False, arguments=arguments)
        channel.queue_bind(queue, broker.exchange, routing_key="#")


def _delete(broker: Broker, queue: str) -> None:
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(broker.url))) as conn:
        channel = conn.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(broker.exchange)


@contextlib.asynccontextmanager
async def exchange() -> AsyncIterator[Broker]:
    """Declares this run's exchange and queue, yields where to publish, deletes both."""
    name = f"statemgr.bench.{uuid.uuid4().hex[:10]}"
    broker = Broker(URL, name)
    await asyncio.to_thread(_declare, broker, name)
    try:
        yield broker
    finally:
        await asyncio.to_thread(_delete, broker, name)
