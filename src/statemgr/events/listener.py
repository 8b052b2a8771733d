"""The process's one LISTEN connection: turns the events table's notifications into in-process wake-ups.

A trigger on events (sql/0008) sends NOTIFY statemgr_events with the tenant id when a writing transaction commits.
Every subscriber and the relay of this process share this connection. Notifications only speed things up: the
readers also poll, so a notification lost (for instance while this connection reconnects) delays an event by at
most the poll interval, and a reconnect wakes everyone at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import structlog
from psycopg import sql

from statemgr import tasks

_log = structlog.get_logger("statemgr.events.listener")

CHANNEL = "statemgr_events"
_RETRY_SECONDS = 1.0

Wake = Callable[[str | None], None]
"""Called with the tenant id of a notification, or None when notifications may have been missed."""


class Listener:
    def __init__(self, url: str, role: str) -> None:
        self._url = url
        self._role = role
        self._callbacks: list[Wake] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def add(self, callback: Wake) -> None:
        self._callbacks.append(callback)

    @property
    def wanted(self) -> bool:
        """Whether anyone listens: without callbacks the connection is not worth opening."""
        return bool(self._callbacks)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-listener")

    async def stop(self) -> None:
        await tasks.cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                _log.warning("event_listener_disconnected", error=str(exc))
            self.connected.clear()
            await asyncio.sleep(_RETRY_SECONDS)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
            if self._role:
                await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self._role)))
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            self.connected.set()
            self._notify(None)
            async for notification in conn.notifies():
                self._notify(notification.payload)

    def _notify(self, tenant: str | None) -> None:
        for callback in self._callbacks:
            callback(tenant)
