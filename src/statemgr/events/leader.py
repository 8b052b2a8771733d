"""Leadership among server processes: a PostgreSQL session advisory lock held on a dedicated connection.

Exactly one process relays to RabbitMQ and prunes the log at a time. Each process polls pg_try_advisory_lock
about once a second on its own connection; the holder runs its duties on that same connection. If the holder dies,
PostgreSQL ends its session and releases the lock, and another process takes it at its next poll. Keepalives on
both ends of the connection (and tcp_user_timeout) make a vanished host's session end within seconds too. If the
holder merely loses its connection, its duties fail on their next query and it goes back to polling, so two
leaders never both mark events (a relay cut off mid-batch may still have sent a few messages: duplicates, with the
same message_id).

The connection runs as statemgr_relay (sql/0007): no BYPASSRLS, but policies that let it see every tenant's events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import dict_row

from statemgr import tasks
from statemgr.events import metrics
from statemgr.store.db import Connection, UnsafeRoleError

_log = structlog.get_logger("statemgr.events.leader")

ROLE = "statemgr_relay"
# Any constant works as long as every statemgr process uses the same one; "smrelay1" in ASCII.
LOCK_KEY = 0x736D72656C617931
_ROLE_CHECK = "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"

Duties = Callable[[Connection], Awaitable[None]]


class Leadership:
    def __init__(self, url: str, duties: Duties, poll_seconds: float = 1.0) -> None:
        self._url = url
        self._duties = duties
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self.leading = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-leadership")

    async def stop(self) -> None:
        """Stops the duties and closes the connection, which releases the lock at once."""
        await tasks.cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            try:
                await self._campaign()
            except (psycopg.Error, OSError) as exc:
                _log.warning("leadership_lost", error=str(exc))
            except UnsafeRoleError as exc:
                _log.error("leadership_refused", error=str(exc))
            except Exception:
                _log.exception("leader_duties_failed")
            finally:
                self._step_down()
            await asyncio.sleep(self._poll)

    async def _campaign(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._url,
            autocommit=True,
            row_factory=dict_row,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        ) as conn:
            await _become_relay(conn)
            await _wait_for_lock(conn, self._poll)
            self.leading.set()
            metrics.LEADER.set(1)
            _log.info("leadership_taken")
            await self._duties(conn)

    def _step_down(self) -> None:
        if self.leading.is_set():
            _log.info("leadership_released")
        self.leading.clear()
        metrics.LEADER.set(0)


async def _become_relay(conn: Connection) -> None:
    # The server side must notice a vanished leader too (its session holds the lock): without these it waits for the
    # operating system's keepalive, two hours by default.
    await conn.execute("SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3")
    await conn.execute("SET tcp_user_timeout = 10000")
    await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ROLE)))
    row = await (await conn.execute(_ROLE_CHECK)).fetchone()
    if row is None or row["rolsuper"] or row["rolbypassrls"]:
        raise UnsafeRoleError(f"role {ROLE!r} bypasses row-level security; refusing to relay")


async def _wait_for_lock(conn: Connection, poll_seconds: float) -> None:
    while True:
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS taken", (LOCK_KEY,))).fetchone()
        if row and row["taken"]:
            return
        await asyncio.sleep(poll_seconds)
