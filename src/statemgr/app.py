"""The resources one server process holds (pools and clients), opened at start and closed at stop."""

from __future__ import annotations

import asyncio
import dataclasses
import enum

from statemgr import metrics
from statemgr.background import Background
from statemgr.cache import Cache, WarmReport
from statemgr.config import Settings
from statemgr.events.runtime import EventRuntime
from statemgr.store.db import Database
from statemgr.store.probe import DatabaseProbe


class Role(enum.Enum):
    """What a process does (docs/processes.md)."""

    ALL = "all"  # answers calls and runs the background: the tests, `statemgr serve --workers 0`
    CALLS = "calls"  # a gRPC worker of `statemgr serve`: calls and Subscribe streams, no background duties
    BACKGROUND = "background"  # the parent process of `statemgr serve`: the background duties, no calls


@dataclasses.dataclass
class App:
    """Everything the servicers need; built without I/O, opened by `start`."""

    settings: Settings
    db: Database
    cache: Cache
    events: EventRuntime
    probe: DatabaseProbe
    metrics: metrics.MetricsServer | None = None
    background: Background | None = None  # the leader duties, where this process runs them
    warming: asyncio.Task[WarmReport] | None = None  # the cache warm-up, started with the background

    @classmethod
    def build(cls, settings: Settings, role: Role = Role.ALL) -> App:
        db = Database(
            settings.database_url,
            settings.db_role,
            settings.db_pool_min,
            settings.db_pool_max,
            prepared_statements=settings.db_prepared_statements,
            acquire_timeout=settings.db_acquire_timeout_seconds,
            connect_timeout=settings.db_connect_timeout_seconds,
            busy_timeout=settings.db_busy_timeout_seconds,
        )
        probe = DatabaseProbe(
            settings.database_url,
            db,
            settings.db_probe_seconds,
            settings.db_acquire_timeout_seconds,
            settings.db_connect_timeout_seconds,
        )
        events = EventRuntime(settings, db, streaming=role is not Role.BACKGROUND)
        app = cls(settings=settings, db=db, cache=Cache.build(settings), events=events, probe=probe)
        if role is not Role.CALLS:
            app.background = Background(app)
        return app

    async def start(self) -> None:
        await self.db.open()
        await self.probe.start()
        await self.cache.start()  # never fails: Redis down means every read goes to PostgreSQL
        await self.events.start()  # never fails: its connections retry in the background
        if self.settings.metrics_listen:
            self.metrics = metrics.start(self.settings.metrics_listen, metrics.registry(self.db.pool, self.cache))
        if self.background is not None:
            await self.background.start()
            # Imported here: the warm-up builds what the api layer caches, and the api layer imports this module.
            from statemgr.api import cache_warm

            self.warming = cache_warm.start(self)  # in the background: readiness never waits for it

    async def stop(self) -> None:
        if self.background is not None:
            await self.background.stop()
        if self.metrics is not None:
            await self.metrics.stop()
            self.metrics = None
        await self.events.stop()
        await self.cache.stop()
        await self.probe.stop()
        await self.db.close()
