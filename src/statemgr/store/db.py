"""The PostgreSQL pool and the one tenant-scoped transaction helper every repository runs in."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.pq import ConnStatus, PipelineStatus, TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from statemgr.domain import errors

Connection = psycopg.AsyncConnection[dict[str, Any]]
Cursor = psycopg.AsyncCursor[dict[str, Any]]
Row = dict[str, Any]
Statement = tuple[LiteralString, Mapping[str, Any]]

# The role and the tenant are set per transaction (set_config(..., true) is SET LOCAL), never per session: so a
# connection holds no state between transactions, which PgBouncer's transaction pooling needs (docs/scaling.md).
# Role 'none' is the login role itself.
_BEGIN_FOR_TENANT = sql.SQL("BEGIN; SELECT set_config('role', {}, true), set_config('app.tenant_id', {}, true)")
_SET_SCOPE: LiteralString = "SELECT set_config('role', %s, true), set_config('app.tenant_id', %s, true)"
_SET_ROLE: LiteralString = "SELECT set_config('role', %s, true)"
_READY = 0.001  # psycopg_pool refuses a timeout of 0; this is "only a connection that is idle now"
_ROLE_CHECK = "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"


class Pipelined:
    """A `Database.pipelined` transaction: its connection, in pipeline mode until `commit`."""

    def __init__(self, conn: Connection, pipeline: contextlib.AsyncExitStack) -> None:
        self.conn = conn
        self.committed = False
        self._pipeline = pipeline

    async def commit(self) -> None:
        """Queues COMMIT and sends everything queued in one round trip, ending pipeline mode: every cursor's rows
        are then read without waiting. An error in any queued statement rolls the transaction back and is raised;
        the connection lost on the way raises CommitOutcomeUnknown."""
        self.committed = True
        async with _commit_outcome(self.conn):
            await self.conn.execute("COMMIT")
            await self._pipeline.aclose()


class UnsafeRoleError(RuntimeError):
    """The service would run its queries as a role that row-level security does not apply to."""


class Database:
    """A pool of connections whose transactions run as the service role, each scoped to one tenant."""

    def __init__(
        self,
        url: str,
        role: str,
        min_size: int = 2,
        max_size: int = 10,
        prepared_statements: bool = True,
        acquire_timeout: float = 1.0,
        connect_timeout: int = 2,
        busy_timeout: float = 10.0,
    ) -> None:
        self._role = role or "none"
        self._acquire_timeout = acquire_timeout
        self._busy_timeout = busy_timeout
        self.available = True  # whether PostgreSQL answers, kept by the probe (store.probe)
        # psycopg prepares a statement on its fifth run by default; PgBouncer before 1.21 cannot route those.
        prepare: dict[str, Any] = {} if prepared_statements else {"prepare_threshold": None}
        self.pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": connect_timeout, **prepare},
            name="statemgr",
            # A call waits this long for a connection, then answers UNAVAILABLE (psycopg_pool's default is 30 s).
            timeout=acquire_timeout,
            # A failed connection attempt is not retried on psycopg_pool's backoff (1, 2, 4 ... s, which kept the
            # pool empty for seconds after PostgreSQL came back): the next call that waits, or the probe
            # (store.probe) seeing PostgreSQL back, makes the next attempt at once.
            reconnect_timeout=0.0,
        )

    async def open(self, wait_seconds: float = 10.0) -> None:
        """Opens the pool, failing fast if PostgreSQL is unreachable or the role bypasses RLS."""
        await self.pool.open(wait=True, timeout=wait_seconds)
        async with self.untenanted() as conn:
            row = await (await conn.execute(_ROLE_CHECK)).fetchone()
        if row is None or row["rolsuper"] or row["rolbypassrls"]:
            raise UnsafeRoleError(f"role {self._role!r} bypasses row-level security; refusing to serve")

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection from the pool that was alive a moment ago; else PoolTimeout (UNAVAILABLE).

        A call waits `acquire_timeout` for it, then again while the probe still sees PostgreSQL answering (every
        connection merely busy: a burst), up to `busy_timeout` in all. An idle connection whose server went away
        (PostgreSQL restarted, the network reset) has its end of file waiting on the socket: it is seen without a
        round trip, closed, and the next one taken; else each would fail one call after PostgreSQL came back.
        """
        conn = await self._checkout()
        try:
            yield conn
        finally:
            if not _reusable(conn):
                await conn.close()  # the pool discards a closed connection and opens another
            await self.pool.putconn(conn)

    async def ping(self) -> bool:
        """`SELECT 1` on an idle pool connection; False, at once, when none is idle (the probe, store.probe)."""
        if not self.pool.get_stats().get("pool_available"):
            return False
        try:
            conn = await self.pool.getconn(_READY)
        except psycopg_pool.PoolTimeout:
            return False
        try:
            if not _alive(conn):
                await conn.close()
                return False
            await conn.execute("SELECT 1")
            return True
        finally:
            await self.pool.putconn(conn)

    async def _checkout(self) -> Connection:
        now = time.monotonic()
        deadline, busy_deadline = now + self._acquire_timeout, now + self._busy_timeout
        while True:
            try:
                conn = await self.pool.getconn(max(deadline - time.monotonic(), 0.0))
            except psycopg_pool.PoolTimeout:
                now = time.monotonic()
                if not self.available or now >= busy_deadline:
                    raise
                deadline = min(now + self._acquire_timeout, busy_deadline)
                continue
            if _alive(conn):
                return conn
            await conn.close()
            await self.pool.putconn(conn)  # closed: the pool discards it and opens another

    @asynccontextmanager
    async def tenant(self, tenant_id: uuid.UUID) -> AsyncIterator[Connection]:
        """A transaction that sees only `tenant_id`'s rows; commits on success, rolls back on any exception.

        BEGIN and the tenant setting travel in one round trip (a simple-query batch; the tenant is a UUID, quoted
        as a literal by psycopg). Nested `conn.transaction()` blocks inside become savepoints.
        """
        begin = _BEGIN_FOR_TENANT.format(sql.Literal(self._role), sql.Literal(str(tenant_id)))
        async with self.connection() as conn:
            await conn.execute(begin)
            try:
                yield conn
            except BaseException:
                await _rollback(conn)
                raise
            async with _commit_outcome(conn):
                await conn.execute("COMMIT")

    async def once(self, tenant_id: uuid.UUID, statements: Sequence[Statement]) -> list[list[Row]]:
        """Runs `statements` in one transaction of `tenant_id` in ONE round trip; returns each statement's rows.

        BEGIN, the tenant, the statements and COMMIT travel together (`pipelined`), so no statement can depend on
        what Python reads from an earlier one (SQL can: each statement sees the earlier ones' writes). For the hot
        paths (a create, a status report, a read), which `tenant` would take three or four round trips for.
        """
        async with self.pipelined(tenant_id) as transaction:
            cursors = [await transaction.conn.execute(query, params) for query, params in statements]
            await transaction.commit()
            return [await cursor.fetchall() if cursor.description else [] for cursor in cursors]

    async def one_row(self, tenant_id: uuid.UUID, query: LiteralString, params: Mapping[str, Any]) -> Row | None:
        """The first row of one read in a transaction of its own, in one round trip (`once`)."""
        try:
            (rows,) = await self.once(tenant_id, [(query, params)])
        except errors.CommitOutcomeUnknown as exc:  # a read has no outcome to be unsure of
            raise psycopg.OperationalError(str(exc)) from exc
        return rows[0] if rows else None

    @asynccontextmanager
    async def pipelined(self, tenant_id: uuid.UUID) -> AsyncIterator[Pipelined]:
        """A transaction of `tenant_id` in pipeline mode, for a body that works in a few round trips.

        BEGIN and the tenant travel with the body's first round trip: reading a cursor's rows sends everything
        queued so far, in one round trip, and errors surface there. `Pipelined.commit` sends the last statements
        with the COMMIT; a body that does not call it is committed at its end. Any error rolls back and is raised.
        """
        async with self.connection() as conn:
            try:
                async with contextlib.AsyncExitStack() as pipeline:
                    await pipeline.enter_async_context(conn.pipeline())
                    await conn.execute("BEGIN")
                    await conn.execute(_SET_SCOPE, (self._role, str(tenant_id)))
                    transaction = Pipelined(conn, pipeline)
                    yield transaction
                    if not transaction.committed:
                        await transaction.commit()
            except BaseException:
                await _rollback(conn)
                raise

    @asynccontextmanager
    async def untenanted(self) -> AsyncIterator[Connection]:
        """A transaction with no tenant set: row-level security shows it no tenant's rows. It exists for the one
        cross-tenant read, sql/0009's SECURITY DEFINER function (the cache warm-up); everything else uses `tenant`."""
        async with self.connection() as conn, conn.transaction():
            await conn.execute(_SET_ROLE, (self._role,))
            yield conn


def _reusable(conn: Connection) -> bool:
    """Whether a connection coming back can serve another transaction as it is. A call abandoned mid-conversation
    (its client's deadline cancels it inside psycopg's pipeline exit, say) can leave libpq in pipeline mode or a
    result unread; psycopg_pool rolls back an open transaction but does not look at pipeline mode, and every later
    transaction on such a connection fails ("cannot insert multiple commands into a prepared statement")."""
    pgconn = conn.pgconn
    return (
        pgconn.status == ConnStatus.OK
        and pgconn.pipeline_status == PipelineStatus.OFF
        and pgconn.transaction_status in (TransactionStatus.IDLE, TransactionStatus.INTRANS, TransactionStatus.INERROR)
    )


def _alive(conn: Connection) -> bool:
    """Whether an idle connection is still open, read from its socket without a round trip."""
    pgconn = conn.pgconn
    try:
        pgconn.consume_input()  # non-blocking: reads what the server sent while idle, end of file included
    except psycopg.OperationalError:
        return False
    return pgconn.status == ConnStatus.OK


@asynccontextmanager
async def _commit_outcome(conn: Connection) -> AsyncIterator[None]:
    """Around the round trip that carries COMMIT: the connection lost there leaves the outcome unknown."""
    try:
        yield
    except psycopg.OperationalError as exc:
        if conn.closed:  # broken, not just refused
            raise errors.CommitOutcomeUnknown() from exc
        raise  # the server answered (a serialization failure, say): rolled back, known


async def _rollback(conn: Connection) -> None:
    # A broken connection cannot roll back; the pool discards it when it comes back.
    with contextlib.suppress(psycopg.Error):
        await conn.execute("ROLLBACK")


async def first_row(source: Connection | Database, query: LiteralString, params: Mapping[str, Any]) -> Row | None:
    """The first row of a read: inside the caller's transaction (a Connection), or in a transaction of its own in
    one round trip (the Database; the tenant is params["tenant_id"])."""
    if isinstance(source, Database):
        return await source.one_row(params["tenant_id"], query, params)
    return await (await source.execute(query, params)).fetchone()
