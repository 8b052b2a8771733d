"""The event machinery of a process that answers calls, built from the settings, started and stopped with the App.

- a Listener: the one LISTEN connection, waking the feeds (and, where the background runs, the relay);
- a Dispatcher (unless STATEMGR_STREAMING_ENABLED=false, or in the background process): Subscribe's tenant feeds.

The relay, the pruner and the other leader duties are not here: they run in the background (statemgr.background).
"""

from __future__ import annotations

from statemgr.config import Settings
from statemgr.events.listener import Listener
from statemgr.events.subscriptions import Dispatcher
from statemgr.store.db import Database


class EventRuntime:
    """Built without I/O; `start` opens the connections and tasks, `stop` closes them."""

    def __init__(self, settings: Settings, db: Database, streaming: bool = True) -> None:
        self.listener = Listener(settings.direct_database_url, settings.db_role)
        self.dispatcher = _dispatcher(settings, db) if streaming else None
        if self.dispatcher is not None:
            self.listener.add(self.dispatcher.wake)

    async def start(self) -> None:
        if self.listener.wanted:
            await self.listener.start()

    def close_streams(self) -> None:
        """Ends the Subscribe streams (UNAVAILABLE) so a graceful shutdown need not wait for them."""
        if self.dispatcher is not None:
            self.dispatcher.close_streams()

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await self.listener.stop()


def _dispatcher(settings: Settings, db: Database) -> Dispatcher | None:
    if not settings.streaming_enabled:
        return None
    return Dispatcher(
        db, settings.event_poll_seconds, settings.event_heartbeat_seconds, settings.event_subscriber_buffer
    )
