"""Whether PostgreSQL answers: a `SELECT 1` every probe interval.

Readiness follows it (gRPC health NOT_SERVING while PostgreSQL does not answer, SERVING again at the first answer),
and PostgreSQL seen back makes the pool open connections at once for the calls waiting for one. The probe uses an
idle pool connection when one is ready; when none is (every one busy, or none open because PostgreSQL is away) it
asks on a connection of its own, kept only until the pool has an idle one again: a pool busy with calls is not a
database down, the probe must not wait behind them, and a server should not hold a connection more for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import psycopg
import structlog

from statemgr import tasks
from statemgr.store.db import Database

_log = structlog.get_logger("statemgr.store.probe")

Listener = Callable[[bool], Awaitable[None]]
"""Called with True when PostgreSQL answers again, False when it stopped answering."""


class DatabaseProbe:
    def __init__(self, url: str, db: Database, interval: float, timeout: float, connect_timeout: int) -> None:
        self._url = url
        self._db = db
        self._interval = interval
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._listeners: list[Listener] = []
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.available = True  # the server starts only once the pool has opened

    def add(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="database-probe")

    async def stop(self) -> None:
        await tasks.cancel_and_wait(self._task)
        await self._disconnect()

    async def _run(self) -> None:
        while True:
            answered = await self._answers()
            if answered != self.available:
                self.available = self._db.available = answered
                await self._changed(answered)
            await asyncio.sleep(self._interval)

    async def _answers(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                if await self._db.ping():
                    await self._disconnect()
                    return True
                if self._conn is None:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self._url, autocommit=True, connect_timeout=self._connect_timeout
                    )
                await self._conn.execute("SELECT 1")
            return True
        except (psycopg.Error, OSError, TimeoutError):
            await self._disconnect()
            return False

    async def _changed(self, available: bool) -> None:
        if available:
            _log.info("database_available")
            with contextlib.suppress(psycopg.Error, OSError, TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await self._db.pool.check()  # drops the connections that died meanwhile, opens new ones now
        else:
            _log.warning("database_unavailable")
        for listener in self._listeners:
            await listener(available)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()
