"""The PostgreSQL side of the floor: a throwaway database, its tables, and the three write shapes.

The bench database ``statemgr_bench_floor`` is created if missing and dropped at the end; nothing else is touched.
Its tables have row-level security enabled and forced, with a tenant policy like the service's, and the
transactions run as a non-owner role (``SET ROLE``) so the policies apply, as they do for the service.
"""

from __future__ import annotations

import dataclasses
import os
from typing import LiteralString

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

DATABASE = "statemgr_bench_floor"
ROLE = "statemgr_bench_floor_app"

CUSTOMER_KEYS = 50
TENANT = "00000000-0000-0000-0000-000000000001"  # the tenant of the upserts and status updates
MESSAGE_KEYS = 1_000
STATUSES = ("sent", "delivered", "read")

_SCHEMA: tuple[LiteralString, ...] = (
    """CREATE TABLE IF NOT EXISTS bench_conversation (
        tenant_id uuid NOT NULL,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        whatsapp_conversation_id text NOT NULL,
        state text NOT NULL DEFAULT 'ACTIVE',
        metadata jsonb NOT NULL DEFAULT '{}',
        create_time timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, whatsapp_conversation_id))""",
    """CREATE TABLE IF NOT EXISTS bench_outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id uuid NOT NULL,
        aggregate_id uuid NOT NULL,
        event_type text NOT NULL,
        payload jsonb NOT NULL,
        create_time timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS bench_customer (
        tenant_id uuid NOT NULL,
        whatsapp_id text NOT NULL,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        display_name text NOT NULL,
        message_count integer NOT NULL DEFAULT 0,
        update_time timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, whatsapp_id))""",
    """CREATE TABLE IF NOT EXISTS bench_message (
        tenant_id uuid NOT NULL,
        whatsapp_message_id text NOT NULL,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        status text NOT NULL DEFAULT 'pending',
        status_time timestamptz,
        update_time timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, whatsapp_message_id))""",
    """CREATE TABLE IF NOT EXISTS bench_status_history (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id uuid NOT NULL,
        message_id uuid NOT NULL,
        status text NOT NULL,
        create_time timestamptz NOT NULL DEFAULT now())""",
    "TRUNCATE bench_conversation, bench_outbox, bench_customer, bench_message, bench_status_history",
)

_Conn = psycopg.AsyncConnection[tuple[object, ...]]
Pool = AsyncConnectionPool[_Conn]

_TABLES = ("bench_conversation", "bench_outbox", "bench_customer", "bench_message", "bench_status_history")

SET_TENANT: LiteralString = "SELECT set_config('app.tenant_id', %(tenant_id)s, true)"
SET_SESSION_TENANT: LiteralString = "SELECT set_config('app.tenant_id', %(tenant_id)s, false)"

INSERT_CONVERSATION: LiteralString = """
INSERT INTO bench_conversation (tenant_id, whatsapp_conversation_id, metadata)
VALUES (%(tenant_id)s, %(whatsapp_conversation_id)s, '{"channel": "whatsapp"}')
RETURNING id"""

INSERT_OUTBOX: LiteralString = """
INSERT INTO bench_outbox (tenant_id, aggregate_id, event_type, payload)
VALUES (%(tenant_id)s, %(aggregate_id)s, 'conversation.created', %(payload)s)"""

UPSERT_CUSTOMER: LiteralString = """
INSERT INTO bench_customer AS c (tenant_id, whatsapp_id, display_name, message_count)
VALUES (%(tenant_id)s, %(whatsapp_id)s, %(display_name)s, 1)
ON CONFLICT (tenant_id, whatsapp_id) DO UPDATE
SET display_name = EXCLUDED.display_name, message_count = c.message_count + 1, update_time = now()
RETURNING id, message_count"""

# One provider report: the row update and its history row in one statement, as statemgr's apply_status does.
UPDATE_STATUS: LiteralString = """
WITH updated AS (
    UPDATE bench_message SET status = %(status)s, status_time = now(), update_time = clock_timestamp()
    WHERE tenant_id = %(tenant_id)s AND whatsapp_message_id = %(whatsapp_message_id)s
    RETURNING tenant_id, id, status
), history AS (
    INSERT INTO bench_status_history (tenant_id, message_id, status) SELECT tenant_id, id, status FROM updated
)
SELECT id, status FROM updated"""

INSERT_STATUS_EVENT: LiteralString = """
INSERT INTO bench_outbox (tenant_id, aggregate_id, event_type, payload)
VALUES (%(tenant_id)s, %(aggregate_id)s, 'message.status_changed', %(payload)s)"""

SEED_MESSAGES: LiteralString = """
INSERT INTO bench_message (tenant_id, whatsapp_message_id)
SELECT %(tenant_id)s, 'wamid.bench.' || n FROM generate_series(0, %(count)s - 1) AS n"""


@dataclasses.dataclass(frozen=True)
class Target:
    """Where the bench database lives and as whom the transactions run."""

    admin_url: str
    bench_url: str
    role: str | None


def admin_url() -> str:
    """The maintenance database URL, from STATEMGR_BENCH_PG_URL."""
    return os.environ.get("STATEMGR_BENCH_PG_URL", "postgresql://localhost/postgres")


def _bench_url(url: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = DATABASE
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


async def create() -> tuple[Target, bool]:
    """Creates the bench database, role and tables; returns the target and whether the role was created here."""
    url = admin_url()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        if not await _exists(conn, "SELECT 1 FROM pg_database WHERE datname = %s", DATABASE):
            await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        role_created = await _create_role(conn)
        role = ROLE if await _can_become(conn) else None
    bench = _bench_url(url)
    async with await psycopg.AsyncConnection.connect(bench, autocommit=True) as conn:
        for statement in _SCHEMA:
            await conn.execute(statement)
        for table in _TABLES:
            await _protect(conn, table, role)
        await conn.execute(SET_SESSION_TENANT, {"tenant_id": TENANT})  # for the session: the seed passes the policy
        await conn.execute(SEED_MESSAGES, {"tenant_id": TENANT, "count": MESSAGE_KEYS})
    return Target(url, bench, role), role_created


async def _exists(conn: _Conn, query: LiteralString, name: str) -> bool:
    cur = await conn.execute(query, (name,))
    return await cur.fetchone() is not None


async def _create_role(conn: _Conn) -> bool:
    """Creates the non-owner role if missing and allowed; False if it already existed or cannot be made."""
    if await _exists(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", ROLE):
        return False
    try:
        await conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(ROLE)))
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


async def _can_become(conn: _Conn) -> bool:
    """Whether the bench role exists and the connecting user may SET ROLE to it."""
    if not await _exists(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", ROLE):
        return False
    cur = await conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (ROLE,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def _protect(conn: _Conn, table: str, role: str | None) -> None:
    ident = sql.Identifier(table)
    await conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(ident))
    await conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(ident))
    await conn.execute(sql.SQL("DROP POLICY IF EXISTS tenant_isolation ON {}").format(ident))
    await conn.execute(
        sql.SQL(
            "CREATE POLICY tenant_isolation ON {} "
            "USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid) "
            "WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
        ).format(ident)
    )
    if role is not None:
        await conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(ident, sql.Identifier(role)))


async def drop(target: Target, role_created: bool) -> None:
    """Drops the bench database, and the role if this run created it."""
    async with await psycopg.AsyncConnection.connect(target.admin_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        if role_created:
            await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(ROLE)))


def pool(target: Target, size: int) -> Pool:
    """A closed pool of ``size`` connections to the bench database, switched to the non-owner role."""

    async def configure(conn: _Conn) -> None:
        if target.role is not None:
            await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(target.role)))
            await conn.commit()

    return AsyncConnectionPool(target.bench_url, min_size=size, max_size=size, open=False, configure=configure)


async def two_insert(conn: _Conn, tenant_id: str, key: str) -> None:
    """BEGIN; set_config; INSERT a conversation; INSERT its outbox event; COMMIT."""
    async with conn.transaction():
        await conn.execute(SET_TENANT, {"tenant_id": tenant_id})
        cur = await conn.execute(INSERT_CONVERSATION, {"tenant_id": tenant_id, "whatsapp_conversation_id": key})
        row = await cur.fetchone()
        assert row is not None
        payload = Jsonb({"whatsapp_conversation_id": key, "state": "ACTIVE"})
        await conn.execute(INSERT_OUTBOX, {"tenant_id": tenant_id, "aggregate_id": row[0], "payload": payload})


async def upsert(conn: _Conn, tenant_id: str, i: int) -> None:
    """BEGIN; set_config; INSERT ... ON CONFLICT DO UPDATE ... RETURNING on one of 50 customers; COMMIT."""
    async with conn.transaction():
        await conn.execute(SET_TENANT, {"tenant_id": tenant_id})
        params = {"tenant_id": tenant_id, "whatsapp_id": f"4479460{i % CUSTOMER_KEYS:05d}", "display_name": "Bench"}
        cur = await conn.execute(UPSERT_CUSTOMER, params)
        await cur.fetchone()


async def update_status(conn: _Conn, tenant_id: str, i: int) -> None:
    """BEGIN; set_config; UPDATE one of MESSAGE_KEYS messages with its history row (one statement); INSERT its
    outbox event; COMMIT: the shape of a status report that changes something."""
    async with conn.transaction():
        await conn.execute(SET_TENANT, {"tenant_id": tenant_id})
        params = {
            "tenant_id": tenant_id,
            "whatsapp_message_id": f"wamid.bench.{i % MESSAGE_KEYS}",
            "status": STATUSES[(i // MESSAGE_KEYS) % len(STATUSES)],
        }
        cur = await conn.execute(UPDATE_STATUS, params)
        row = await cur.fetchone()
        assert row is not None
        payload = Jsonb({"message_id": str(row[0]), "status": row[1]})
        await conn.execute(INSERT_STATUS_EVENT, {"tenant_id": tenant_id, "aggregate_id": row[0], "payload": payload})


async def settings(target: Target) -> dict[str, str]:
    """Server settings that decide the write floor, for the results file."""
    names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers")
    async with await psycopg.AsyncConnection.connect(target.admin_url, autocommit=True) as conn:
        query: LiteralString = "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) ORDER BY name"
        cur = await conn.execute(query, (list(names),))
        return {str(name): str(value) for name, value in await cur.fetchall()}
