"""Migrations on a real, fresh database: all up, all down, all up again; and two concurrent `up` calls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from statemgr.store import migrate
from tests.integration.conftest import admin_execute, db_url

SNAPSHOT_QUERIES = (
    "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns"
    " WHERE table_schema = 'public' ORDER BY 1, 2",
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "SELECT tablename, policyname, qual, with_check FROM pg_policies WHERE schemaname = 'public' ORDER BY 1, 2",
    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
    " WHERE grantee = 'statemgr_app' ORDER BY 1, 2",
)
CONVERSATION_TABLES = {
    "conversations",
    "conversation_state_transitions",
    "conversation_assignments",
    "conversation_genesys_ids",
}


@pytest.fixture
def fresh_url(pg_admin_url: str) -> Iterator[str]:
    """An empty database, dropped afterwards."""
    name = f"statemgr_mig_{uuid.uuid4().hex[:12]}"
    admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield db_url(name)
    admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def query(url: str, text: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await (await conn.execute(text.encode())).fetchall()


async def snapshot(url: str) -> list[list[tuple[Any, ...]]]:
    return [await query(url, text) for text in SNAPSHOT_QUERIES]


async def tables(url: str) -> set[str]:
    rows = await query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(row[0]) for row in rows}


async def applied_versions(url: str) -> list[int]:
    return [int(row[0]) for row in await query(url, "SELECT version FROM schema_migrations ORDER BY version")]


async def test_all_up_all_down_all_up_again(fresh_url: str) -> None:
    every = [m.version for m in migrate.load()]
    assert [m.version for m in await migrate.up(fresh_url)] == every
    assert CONVERSATION_TABLES <= await tables(fresh_url)
    first = await snapshot(fresh_url)

    assert [m.version for m in await migrate.down(fresh_url, steps=None)] == every[::-1]
    assert await tables(fresh_url) == {"schema_migrations"}
    assert await query(fresh_url, "SELECT * FROM pg_policies WHERE schemaname = 'public'") == []
    assert await applied_versions(fresh_url) == []

    assert [m.version for m in await migrate.up(fresh_url)] == every
    assert await snapshot(fresh_url) == first
    assert await migrate.up(fresh_url) == []  # nothing left to do


async def test_the_conversations_migration_goes_down_and_up_alone(fresh_url: str) -> None:
    await migrate.up(fresh_url, target=3)
    assert CONVERSATION_TABLES <= await tables(fresh_url)
    assert [m.version for m in await migrate.down(fresh_url, steps=1)] == [3]
    assert not CONVERSATION_TABLES & await tables(fresh_url)
    assert await query(fresh_url, "SELECT extname FROM pg_extension WHERE extname = 'btree_gin'") == []
    assert [m.version for m in await migrate.up(fresh_url, target=3)] == [3]


async def test_two_concurrent_ups_both_succeed_and_apply_each_migration_once(fresh_url: str) -> None:
    every = [m.version for m in migrate.load()]
    first, second = await asyncio.gather(migrate.up(fresh_url), migrate.up(fresh_url))
    applied = sorted(m.version for m in [*first, *second])
    assert applied == every, "each migration applied exactly once across the two"
    assert await applied_versions(fresh_url) == every
    assert CONVERSATION_TABLES <= await tables(fresh_url)
