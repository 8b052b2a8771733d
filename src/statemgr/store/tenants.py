"""Tenants, API keys and retention periods in PostgreSQL. Every function runs inside a tenant transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg

from statemgr.domain.tenants import ApiKey, RetentionPolicy, Tenant
from statemgr.store import queries
from statemgr.store.db import Connection

Q = queries.load("tenants")


async def insert_tenant(
    conn: Connection, tenant_id: uuid.UUID, display_name: str, region: str, time_zone: str = "UTC"
) -> Tenant:
    params = {"id": tenant_id, "display_name": display_name, "default_region": region, "time_zone": time_zone}
    return Tenant(**await _one(await conn.execute(Q["insert_tenant"], params)))


async def update_tenant(conn: Connection, time_zone: str | None) -> Tenant | None:
    """Sets the tenant's settings given (None keeps one); None when the tenant does not exist."""
    row = await (await conn.execute(Q["update_tenant"], {"time_zone": time_zone})).fetchone()
    return Tenant(**row) if row else None


async def get_tenant(conn: Connection) -> Tenant | None:
    """The tenant of the current transaction's scope."""
    row = await (await conn.execute(Q["get_tenant"])).fetchone()
    return Tenant(**row) if row else None


async def insert_api_key(
    conn: Connection, tenant_id: uuid.UUID, display_name: str, key_hash: bytes, prefix: str
) -> ApiKey:
    params = {"tenant_id": tenant_id, "id": uuid.uuid4(), "display_name": display_name}
    cur = await conn.execute(Q["insert_api_key"], {**params, "key_hash": key_hash, "key_prefix": prefix})
    return ApiKey(**await _one(cur))


async def revoke_api_key(conn: Connection, key_id: uuid.UUID) -> ApiKey | None:
    row = await (await conn.execute(Q["revoke_api_key"], {"id": key_id})).fetchone()
    return ApiKey(**row) if row else None


async def find_api_key(conn: Connection, key_hash: bytes) -> ApiKey | None:
    row = await (await conn.execute(Q["find_api_key"], {"key_hash": key_hash})).fetchone()
    return ApiKey(**row) if row else None


async def get_retention(conn: Connection) -> RetentionPolicy | None:
    row = await (await conn.execute(Q["get_retention"])).fetchone()
    return RetentionPolicy(**row) if row else None


async def update_retention(conn: Connection, changes: dict[str, dt.timedelta]) -> RetentionPolicy | None:
    """Sets the named periods (keys are the policy's field names) and returns the policy."""
    params = {
        name: changes.get(name) for name in ("closed_conversation_retention", "archive_retention", "event_retention")
    }
    row = await (await conn.execute(Q["update_retention"], params)).fetchone()
    return RetentionPolicy(**row) if row else None


async def _one(cur: psycopg.AsyncCursor[dict[str, Any]]) -> dict[str, Any]:
    row = await cur.fetchone()
    if row is None:
        raise LookupError("the statement returned no row")
    return row
