"""The resources one server process holds (pools and clients), opened at start and closed at stop."""

from __future__ import annotations

import asyncio
import dataclasses

from statemgr import metrics
from statemgr.cache import Cache, WarmReport
from statemgr.config import Settings
from statemgr.events.runtime import EventRuntime
from statemgr.store.db import Database
from statemgr.store.probe import DatabaseProbe


@dataclasses.dataclass
class App:
    """Everything the servicers need; built without I/O, opened by `start`."""

    settings: Settings
    db: Database
    cache: Cache
    events: EventRuntime
    probe: DatabaseProbe
    metrics: metrics.MetricsServer | None = None
    warming: asyncio.Task[WarmReport] | None = None  # the cache warm-up, started once the server serves

    @classmethod
    def build(cls, settings: Settings) -> App:
        db = Database(
            settings.database_url,
            settings.db_role,
            settings.db_pool_min,
            settings.db_pool_max,
            settings.db_acquire_timeout_seconds,
            settings.db_connect_timeout_seconds,
            settings.db_busy_timeout_seconds,
        )
        probe = DatabaseProbe(
            settings.database_url,
            db,
            settings.db_probe_seconds,
            settings.db_acquire_timeout_seconds,
            settings.db_connect_timeout_seconds,
        )
        return cls(
            settings=settings, db=db, cache=Cache.build(settings), events=EventRuntime(settings, db), probe=probe
        )

    async def start(self) -> None:
        await self.db.open()
        await self.probe.start()
        await self.cache.start()  # never fails: Redis down means every read goes to PostgreSQL
        await self.events.start()  # never fails: its connections retry in the background
        if self.settings.metrics_listen:
            self.metrics = metrics.start(self.settings.metrics_listen, metrics.registry(self.db.pool, self.cache))

    async def stop(self) -> None:
        if self.metrics is not None:
            await self.metrics.stop()
            self.metrics = None
        await self.events.stop()
        await self.cache.stop()
        await self.probe.stop()
        await self.db.close()
