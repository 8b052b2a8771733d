"""The event machinery of one server process, built from the settings, started and stopped with the App.

- a Listener: the one LISTEN connection, waking the feeds and the relay;
- a Dispatcher (unless STATEMGR_STREAMING_ENABLED=false): Subscribe's tenant feeds;
- Leadership, and while this process leads: the Pruner and, when STATEMGR_AMQP_URL is set, the Relay.
"""

from __future__ import annotations

import asyncio

from statemgr import tasks
from statemgr.analytics.consumer import RollupConsumer
from statemgr.config import Settings
from statemgr.events.leader import Leadership
from statemgr.events.listener import Listener
from statemgr.events.pruner import Pruner
from statemgr.events.publisher import AmqpPublisher
from statemgr.events.relay import Relay
from statemgr.events.subscriptions import Dispatcher
from statemgr.store.db import Connection, Database


class EventRuntime:
    """Built without I/O; `start` opens the connections and tasks, `stop` closes them."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.listener = Listener(settings.database_url, settings.db_role)
        self.dispatcher = _dispatcher(settings, db)
        self.relay = _relay(settings)
        self.rollups = RollupConsumer(settings.analytics_poll_seconds, settings.analytics_batch)
        self.rollups_enabled = settings.analytics_enabled
        self.pruner = Pruner(
            settings.event_prune_interval_seconds,
            float(settings.event_retention_seconds),
            require_published=self.relay is not None,
        )
        self.leadership = Leadership(settings.database_url, self._lead, settings.event_leader_poll_seconds)
        if self.dispatcher is not None:
            self.listener.add(self.dispatcher.wake)
        if self.relay is not None:
            self.listener.add(self.relay.wake)

    async def start(self) -> None:
        if self.dispatcher is not None or self.relay is not None:
            await self.listener.start()
        await self.leadership.start()

    def close_streams(self) -> None:
        """Ends the Subscribe streams (UNAVAILABLE) so a graceful shutdown need not wait for them."""
        if self.dispatcher is not None:
            self.dispatcher.close_streams()

    async def stop(self) -> None:
        await self.leadership.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await self.listener.stop()

    async def _lead(self, conn: Connection) -> None:
        """The leader's duties, on its connection, until one fails or leadership is given up."""
        duties = [asyncio.create_task(self.pruner.run(conn), name="event-pruner")]
        if self.relay is not None:
            duties.append(asyncio.create_task(self.relay.run(conn), name="event-relay"))
        if self.rollups_enabled:
            duties.append(asyncio.create_task(self.rollups.run(conn), name="analytics-rollups"))
        try:
            done, _ = await asyncio.wait(duties, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            await tasks.cancel_and_wait_all(duties)


def _dispatcher(settings: Settings, db: Database) -> Dispatcher | None:
    if not settings.streaming_enabled:
        return None
    return Dispatcher(
        db, settings.event_poll_seconds, settings.event_heartbeat_seconds, settings.event_subscriber_buffer
    )


def _relay(settings: Settings) -> Relay | None:
    if not settings.amqp_url:
        return None
    publisher = AmqpPublisher(settings.amqp_url, settings.amqp_exchange)
    return Relay(publisher, settings.event_relay_batch, settings.event_poll_seconds)
