"""The background: every duty that answers no call, kept off the interpreters that answer calls (docs/processes.md).

`statemgr serve` runs it in a process of its own, the parent of its gRPC workers (statemgr.workers); only the
tests and `statemgr serve --workers 0` run it inside a process that also serves. It holds:

- the leader duties (LEADER_DUTIES): run by exactly one process of the whole deployment, the one holding the
  leadership (statemgr.events.leader: a PostgreSQL advisory lock on a dedicated connection); when it dies, another
  process takes over within about STATEMGR_EVENT_LEADER_POLL_SECONDS;
- the cache warm-up, once at the start of each background process (`App.start`).

Adding a leader duty is one line in LEADER_DUTIES: a name and a function that builds the duty from the App when
it is built (no I/O there; None when the settings switch it off). The duty is then awaited with the leader's
connection (autocommit, role statemgr_relay, shared by every duty: statements of one duty may interleave with
another's, so a duty does not open a transaction on it) each time this process takes the leadership. It ends when
the leadership does: a duty that raises (its connection failed, or a bug) ends the term for every duty, the lock
is released with the connection, and the process campaigns again. A duty that returns is done for this term.
A duty that wants to hear of committed events adds a wake-up callback to `app.events.listener` when it is built.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from statemgr import tasks
from statemgr.analytics.consumer import Pruning, RollupConsumer
from statemgr.events.leader import Leadership
from statemgr.events.pruner import Pruner
from statemgr.events.publisher import AmqpPublisher
from statemgr.events.relay import Relay
from statemgr.store.db import Connection
from statemgr.store.events import Backoff

if TYPE_CHECKING:
    from statemgr.app import App

Duty = Callable[[Connection], Coroutine[Any, Any, None]]
"""A leader duty: runs on the leader's connection until it returns, raises, or is cancelled."""
Builder = Callable[["App"], Duty | None]


def _relay(app: App) -> Duty | None:
    settings = app.settings
    if not settings.amqp_url:
        return None
    publisher = AmqpPublisher(settings.amqp_url, settings.amqp_exchange)
    backoff = Backoff(settings.event_unroutable_retry_seconds, settings.event_unroutable_retry_max_seconds)
    relay = Relay(
        publisher,
        settings.event_relay_batch,
        settings.event_poll_seconds,
        settings.event_relay_linger_seconds,
        backoff,
    )
    app.events.listener.add(relay.wake)
    return relay.run


def _pruner(app: App) -> Duty | None:
    settings = app.settings
    retention = float(settings.event_retention_seconds)
    return Pruner(settings.event_prune_interval_seconds, retention, require_published=bool(settings.amqp_url)).run


def _rollups(app: App) -> Duty | None:
    settings = app.settings
    if not settings.analytics_enabled:
        return None
    pruning = Pruning(
        dt.timedelta(days=settings.analytics_message_state_days),
        settings.analytics_prune_interval_seconds,
        settings.analytics_prune_batch,
    )
    consumer = RollupConsumer(settings.analytics_poll_seconds, settings.analytics_batch, pruning=pruning)
    app.events.listener.add(consumer.wake)
    return consumer.run


def _retention(app: App) -> Duty | None:
    if app.settings.retention_interval_seconds <= 0:
        return None  # run by hand (statemgr retention run) or from cron
    # Imported here: it loads pyarrow (about 0.4 s per process), which a gRPC worker never needs.
    from statemgr.jobs.retention import RetentionJob

    return RetentionJob(app.settings, app.db).run


LEADER_DUTIES: tuple[tuple[str, Builder], ...] = (
    ("event-pruner", _pruner),
    ("event-relay", _relay),
    ("analytics-rollups", _rollups),
    ("retention", _retention),
)


class Background:
    """The leader duties of one process and the leadership they run under; built without I/O."""

    def __init__(self, app: App) -> None:
        self.duties = {name: duty for name, build in LEADER_DUTIES if (duty := build(app)) is not None}
        self.leadership = Leadership(
            app.settings.direct_database_url, self._lead, app.settings.event_leader_poll_seconds
        )

    async def start(self) -> None:
        await self.leadership.start()

    async def stop(self) -> None:
        """Ends the duties and gives up the leadership (the lock goes with the connection)."""
        await self.leadership.stop()

    async def _lead(self, conn: Connection) -> None:
        """The leader's duties, on its connection, until one fails or leadership is given up."""
        running = [asyncio.create_task(duty(conn), name=name) for name, duty in self.duties.items()]
        try:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            await tasks.cancel_and_wait_all(running)
