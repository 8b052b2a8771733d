"""The schema is ready to be distributed by tenant on Citus, read from the catalog of a migrated database.

deploy/citus/distribute.sql is the distribution plan. Every table of the schema must be in it; in every distributed
table, every primary key, unique constraint and index must lead with the distribution column (tenant_id; `id` for
tenants), and every foreign key must map that column to the referenced table's, within one colocation group: a key
that does not lead with the tenant cannot be enforced per shard, an index that does not makes a tenant's query
visit every shard, and a foreign key that does not map the tenant could point into another tenant.

The last test breaks each rule on its own database and checks that the checker names each break.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any

import psycopg

PLAN = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "citus" / "distribute.sql"
LOCAL_TABLES = {"schema_migrations"}
# Indexes that serve a deliberately cross-tenant read, with the reason; each shard keeps its own copy, which is what
# that read wants (docs/scaling.md, "PostgreSQL by tenant").
CROSS_TENANT_INDEXES = {
    "events_unpublished": "the relay reads every tenant's unpublished events in seq order (statemgr/events/relay.py)",
    "events_unroutable_waiting": "the relay's retry pass reads every tenant's unroutable events that are due",
}
SyncConn = psycopg.Connection[tuple[Any, ...]]
_WITH_TENANT_ID = (
    "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'tenant_id'"
)

_DISTRIBUTED = re.compile(
    r"create_distributed_table\('(?P<table>\w+)',\s*'(?P<column>\w+)'(?:,\s*colocate_with\s*=>\s*'(?P<with>\w+)')?\)"
)
_REFERENCE = re.compile(r"create_reference_table\('(?P<table>\w+)'\)")


@dataclasses.dataclass(frozen=True)
class Plan:
    column: dict[str, str]  # distributed table -> distribution column
    group: dict[str, str]  # distributed table -> the table its colocation group starts with
    reference: set[str]

    @classmethod
    def read(cls, text: str) -> Plan:
        column: dict[str, str] = {}
        group: dict[str, str] = {}
        for match in _DISTRIBUTED.finditer(text):
            table = match["table"]
            column[table] = match["column"]
            group[table] = group.get(match["with"] or table, match["with"] or table)
        return cls(column, group, {m["table"] for m in _REFERENCE.finditer(text)})


def rows(conn: SyncConn, query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query.encode()).fetchall()


def plan_violations(conn: SyncConn, plan: Plan) -> list[str]:
    """Tables missing from the plan (or planned but absent), and tenant tables not distributed by tenant_id."""
    tables = {
        str(name)
        for (name,) in rows(
            conn,
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'p') AND NOT relispartition",
        )
    }
    with_tenant = {
        str(name)
        for (name,) in rows(
            conn,
            _WITH_TENANT_ID,
        )
    }
    planned = set(plan.column) | plan.reference | LOCAL_TABLES
    found = [f"table {t}: not in deploy/citus/distribute.sql" for t in sorted(tables - planned)]
    found += [f"table {t}: planned but not in the schema" for t in sorted(planned - tables - LOCAL_TABLES)]
    found += [
        f"table {t}: has tenant_id but is not distributed by it"
        for t in sorted(with_tenant & tables)
        if plan.column.get(t) != "tenant_id"
    ]
    return found


def index_violations(conn: SyncConn, plan: Plan) -> list[str]:
    """Indexes (primary keys and unique constraints included) of distributed tables not leading with the column."""
    found = []
    for table, index, first, constraint in rows(
        conn,
        "SELECT t.relname, i.relname, a.attname, coalesce(con.contype::text, '')"
        " FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid"
        " LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]"
        " LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.contype IN ('p', 'u', 'x')"
        " WHERE t.relnamespace = 'public'::regnamespace ORDER BY 1, 2",
    ):
        column = plan.column.get(table)
        if column is None or first == column or index in CROSS_TENANT_INDEXES:
            continue
        kind = {"p": "primary key", "u": "unique constraint", "x": "exclusion constraint"}.get(constraint, "index")
        found.append(f"{kind} {index} on {table}: leads with {first or 'an expression'}, not {column}")
    return found


def foreign_key_violations(conn: SyncConn, plan: Plan) -> list[str]:
    """Foreign keys that do not map the distribution column to the referenced table's, in one colocation group."""
    found = []
    for name, table, target, columns, target_columns in rows(
        conn,
        "SELECT c.conname, t.relname, r.relname,"
        " ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)"
        "       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),"
        " ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)"
        "       JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)"
        " FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid"
        " WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace ORDER BY 1",
    ):
        column = plan.column.get(table)
        if column is None or target in plan.reference:
            continue
        pairs = dict(zip(columns, target_columns, strict=True))
        if plan.group.get(target) != plan.group[table]:
            found.append(f"foreign key {name} on {table}: {target} is not colocated with it")
        elif pairs.get(column) != plan.column[target]:
            found.append(f"foreign key {name} on {table}: does not map {column} to {target}.{plan.column[target]}")
    return found


def violations(conn: SyncConn) -> list[str]:
    plan = Plan.read(PLAN.read_text())
    return plan_violations(conn, plan) + index_violations(conn, plan) + foreign_key_violations(conn, plan)


def test_every_table_key_index_and_foreign_key_is_ready_for_distribution_by_tenant(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert violations(conn) == []


def test_the_plan_puts_every_tenant_table_in_one_colocation_group() -> None:
    plan = Plan.read(PLAN.read_text())
    assert plan.column["tenants"] == "id" and len(plan.column) >= 13
    assert set(plan.group.values()) == {"tenants"}


def test_each_broken_rule_is_named(database_url: str) -> None:
    """Sabotage this test's own database: every kind of break is reported, by name."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX conversations_by_agent ON conversations (agent_id)")
        conn.execute("CREATE UNIQUE INDEX messages_genesys_global ON messages (genesys_message_id)")
        conn.execute("CREATE INDEX customers_lower_name ON customers ((lower(name)))")
        conn.execute(
            "CREATE TABLE notes (tenant_id uuid NOT NULL, id uuid NOT NULL, owner_tenant uuid NOT NULL,"
            " conversation_id uuid NOT NULL, PRIMARY KEY (id, tenant_id),"
            " CONSTRAINT notes_conversation_fkey FOREIGN KEY (owner_tenant, conversation_id)"
            " REFERENCES conversations (tenant_id, id))"
        )
        found = violations(conn)
    assert found == [
        "table notes: not in deploy/citus/distribute.sql",
        "table notes: has tenant_id but is not distributed by it",
        "index conversations_by_agent on conversations: leads with agent_id, not tenant_id",
        "index customers_lower_name on customers: leads with an expression, not tenant_id",
        "index messages_genesys_global on messages: leads with genesys_message_id, not tenant_id",
    ]
    # Once planned, the new table's own breaks show: its key, and its foreign key into another tenant's rows.
    planned = Plan.read(
        PLAN.read_text() + "SELECT create_distributed_table('notes', 'tenant_id', colocate_with => 'tenants');"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert index_violations(conn, planned)[-1] == "primary key notes_pkey on notes: leads with id, not tenant_id"
        assert foreign_key_violations(conn, planned) == [
            "foreign key notes_conversation_fkey on notes: does not map tenant_id to conversations.tenant_id"
        ]
