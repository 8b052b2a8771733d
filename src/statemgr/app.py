"""The resources one server process holds (pools and clients), opened at start and closed at stop."""

from __future__ import annotations

import dataclasses

from statemgr.config import Settings
from statemgr.store.db import Database


@dataclasses.dataclass
class App:
    """Everything the servicers need; built without I/O, opened by `start`."""

    settings: Settings
    db: Database

    @classmethod
    def build(cls, settings: Settings) -> App:
        db = Database(settings.database_url, settings.db_role, settings.db_pool_min, settings.db_pool_max)
        return cls(settings=settings, db=db)

    async def start(self) -> None:
        await self.db.open()

    async def stop(self) -> None:
        await self.db.close()
