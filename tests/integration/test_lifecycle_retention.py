"""The retention job against real PostgreSQL and real object stores (the file system, and moto's S3 server)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from statemgr.config import Settings
from statemgr.jobs.archive_store import ArchiveStore
from statemgr.jobs.retention import RetentionJob, RunSummary
from statemgr.store.db import Database
from statemgr.store.lifecycle import TABLES
from tests.integration import lifecycle_fixtures as lf

OLD, RECENT = "old", "new"


@pytest.fixture(params=["file", "s3"])
def archive_settings(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "file":
        yield dataclasses.replace(
            settings, archive_url=str(tmp_path / "archive"), retention_batch_size=300, retention_pause_ratio=0
        )
        return
    moto: lf.MotoServer = request.getfixturevalue("moto")
    with lf.aws_environment():
        yield dataclasses.replace(
            settings,
            archive_url=f"s3://{moto.bucket()}/archive",
            archive_s3_endpoint=moto.endpoint,
            retention_batch_size=300,
            retention_pause_ratio=0,
        )


@pytest.fixture
async def db(archive_settings: Settings) -> AsyncIterator[Database]:
    database = Database(archive_settings.database_url, archive_settings.db_role, 1, 4)
    await database.open()
    yield database
    await database.close()


async def run(settings: Settings, db: Database, **kwargs: Any) -> RunSummary:
    job = RetentionJob(settings, db)
    async with job.started():
        return await job.run_once(**kwargs)


def snapshot(conn: Any, table: str, tenant_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """The tenant's rows of `table` as JSON (what PostgreSQL itself says), by id."""
    rows = conn.execute(
        f"SELECT id::text, to_jsonb(t) FROM {table} t WHERE tenant_id = %s",
        (tenant_id,),
    ).fetchall()
    return {row[0]: row[1] for row in rows}


async def test_due_conversations_move_to_the_archive_row_for_row(archive_settings: Settings, db: Database) -> None:
    with lf.admin(archive_settings.database_url) as conn:
        tenant = lf.insert_tenant(conn, closed_retention_days=30)
        other = lf.insert_tenant(conn, closed_retention_days=3650)
        lf.seed_closed(conn, tenant, 1000, closed_days_ago=60, tag=OLD)
        lf.seed_closed(conn, tenant, 1000, closed_days_ago=1, tag=RECENT)
        lf.seed_closed(conn, other, 1000, closed_days_ago=60, tag=OLD)
        old = lf.live_ids(conn, tenant, OLD)
        before = {table: snapshot(conn, table, tenant) for table in ("conversations", "messages")}
        other_before = {table: lf.count_rows(conn, table, other) for table in TABLES}

    summary = await run(archive_settings, db)

    assert summary.ok
    mine = next(t for t in summary.tenants if t.tenant_id == tenant)
    assert mine.conversations == 1000 and mine.batches == 4
    assert mine.rows == {
        "conversations": 1000,
        "conversation_state_transitions": 1000,
        "conversation_assignments": 1000,
        "conversation_genesys_ids": 0,
        "messages": 2000,
        "message_status_history": 2000,
        "parked_statuses": 1000,
    }
    with lf.admin(archive_settings.database_url) as conn:
        assert lf.live_ids(conn, tenant, OLD) == set()
        assert len(lf.live_ids(conn, tenant, RECENT)) == 1000
        assert lf.count_rows(conn, "messages", tenant) == 2000
        assert lf.count_rows(conn, "parked_statuses", tenant) == 1000
        assert {table: lf.count_rows(conn, table, other) for table in TABLES} == other_before

    archive = ArchiveStore.from_settings(archive_settings)
    archived = await lf.archived_tables(archive, tenant)
    conversations = lf.rows_of(archived["conversations"])
    assert {uuid.UUID(row["id"]) for row in conversations} == old and len(conversations) == 1000
    # row for row: every archived value is what PostgreSQL held (compared through its own JSON rendering)
    for row in conversations:
        expected = before["conversations"][row["id"]]
        assert row["whatsapp_conversation_id"] == expected["whatsapp_conversation_id"]
        assert row["metadata"] and lf.json_equal(row["metadata"], expected["metadata"])
        assert lf.same_instant(row["closed_at"], expected["closed_at"])
    messages = lf.rows_of(archived["messages"])
    assert len(messages) == 2000
    for row in messages:
        expected = before["messages"][row["id"]]
        assert (row["content"], row["media_urls"], row["status"]) == (
            expected["content"],
            expected["media_urls"],
            expected["status"],
        )
        assert lf.same_instant(row["sent_at"], expected["sent_at"])
    assert await archive.keys(f"tenant={other}") == []
    objects = await archive.keys()
    assert len(objects) == 4 * len(TABLES)

    second = await run(archive_settings, db)
    assert second.ok and all(t.conversations == 0 for t in second.tenants)
    assert await archive.keys() == objects
    with lf.admin(archive_settings.database_url) as conn:
        assert len(lf.live_ids(conn, tenant, RECENT)) == 1000
        manifest = conn.execute(
            "SELECT count(*), sum(row_count) FROM archive_objects WHERE tenant_id = %s AND table_name = 'messages'",
            (tenant,),
        ).fetchone()
    assert manifest == (4, 2000)
    assert REGISTRY.get_sample_value("statemgr_retention_last_success_timestamp_seconds", {"tenant_id": str(tenant)})


async def test_dry_run_counts_and_changes_nothing(archive_settings: Settings, db: Database) -> None:
    with lf.admin(archive_settings.database_url) as conn:
        tenant = lf.insert_tenant(conn, closed_retention_days=30)
        lf.seed_closed(conn, tenant, 40, closed_days_ago=60, tag=OLD)
    summary = await run(archive_settings, db, tenant_id=tenant, dry_run=True)
    assert [(t.tenant_id, t.due) for t in summary.tenants] == [(tenant, 40)]
    with lf.admin(archive_settings.database_url) as conn:
        assert len(lf.live_ids(conn, tenant, OLD)) == 40
    assert await ArchiveStore.from_settings(archive_settings).keys() == []


async def test_archives_past_archive_retention_are_deleted(archive_settings: Settings, db: Database) -> None:
    with lf.admin(archive_settings.database_url) as conn:
        tenant = lf.insert_tenant(conn, closed_retention_days=30, archive_days=10)
        lf.seed_closed(conn, tenant, 20, closed_days_ago=60, tag=OLD)
    assert (await run(archive_settings, db)).ok
    archive = ArchiveStore.from_settings(archive_settings)
    assert len(await archive.keys()) == len(TABLES)
    with lf.admin(archive_settings.database_url) as conn:
        conn.execute(
            "UPDATE archive_batches SET archived_at = now() - interval '11 days' WHERE tenant_id = %s", (tenant,)
        )
    summary = await run(archive_settings, db)
    assert summary.ok and summary.tenants[0].expired == 1
    assert await archive.keys() == []
    with lf.admin(archive_settings.database_url) as conn:
        assert conn.execute("SELECT state FROM archive_batches WHERE tenant_id = %s", (tenant,)).fetchall() == [
            ("expired",)
        ]
        assert lf.count_rows(conn, "archive_objects", tenant) == 0
        assert lf.count_rows(conn, "archived_conversations", tenant) == 0


async def test_one_run_at_a_time(archive_settings: Settings, db: Database) -> None:
    with lf.admin(archive_settings.database_url) as conn:
        tenant = lf.insert_tenant(conn, closed_retention_days=30)
        lf.seed_closed(conn, tenant, 600, closed_days_ago=60, tag=OLD)
    settings = dataclasses.replace(archive_settings, retention_batch_size=50)
    first, second = RetentionJob(settings, db), RetentionJob(settings, db)
    async with first.started(), second.started():
        results = await asyncio.gather(first.run_once(tenant), second.run_once(tenant))
    assert sorted(r.skipped for r in results) == [False, True]
    assert sum(t.conversations for r in results for t in r.tenants) == 600


async def test_batches_are_bounded_by_messages_as_well_as_conversations(
    archive_settings: Settings, db: Database
) -> None:
    with lf.admin(archive_settings.database_url) as conn:
        tenant = lf.insert_tenant(conn, closed_retention_days=30)
        lf.seed_closed(conn, tenant, 12, closed_days_ago=60, tag=OLD)  # two messages each
        lf.seed_closed(conn, tenant, 1, closed_days_ago=90, tag="long")  # the oldest, 40 messages
        long_id = lf.live_ids(conn, tenant, "long").pop()
        conn.execute(
            "INSERT INTO messages (tenant_id, id, conversation_id, whatsapp_message_id, direction, status, content)"
            " SELECT %s, gen_random_uuid(), %s, 'wamid.long.' || n, 'inbound', 'delivered', 'more ' || n"
            " FROM generate_series(1, 38) n",
            (tenant, long_id),
        )
    bounded = dataclasses.replace(archive_settings, retention_batch_size=100, retention_batch_messages=5)
    summary = await run(bounded, db, tenant_id=tenant)
    assert summary.ok and summary.tenants[0].conversations == 13
    with lf.admin(archive_settings.database_url) as conn:
        sizes = conn.execute(
            "SELECT b.conversations, (SELECT sum(row_count) FROM archive_objects o"
            "   WHERE o.batch_id = b.id AND o.table_name = 'messages')"
            " FROM archive_batches b WHERE tenant_id = %s ORDER BY created_at, id",
            (tenant,),
        ).fetchall()
        assert lf.live_ids(conn, tenant) == set()
    # the long conversation alone (over the bound, oldest first), then two conversations (4 messages) a batch
    assert sizes == [(1, 40)] + [(2, 4)] * 6


class _ReportWhileWriting(ArchiveStore):
    """The real store, with a late status report committed by another connection while the batch holding its
    message is being written (between the batch's read and its purge)."""

    def __init__(self, settings: Settings, message_id: uuid.UUID) -> None:
        super().__init__(settings.archive_url, settings.archive_s3_endpoint)
        self._database_url = settings.database_url
        self._message_id = message_id
        self.reported = False

    async def put(self, key: str, data: bytes) -> None:
        if not self.reported and "/messages/" in key:
            self.reported = True
            with lf.admin(self._database_url) as conn:
                conn.execute("UPDATE messages SET status = 'read' WHERE id = %s", (self._message_id,))
        await super().put(key, data)


async def test_a_row_changed_while_its_batch_is_written_abandons_the_batch_then_archives_the_change(
    archive_settings: Settings, db: Database
) -> None:
    with lf.admin(archive_settings.database_url) as conn:
        tenant = lf.insert_tenant(conn, closed_retention_days=30)
        lf.seed_closed(conn, tenant, 3, closed_days_ago=60, tag=OLD)
        row = conn.execute(
            "SELECT id FROM messages WHERE tenant_id = %s AND direction = 'outbound' ORDER BY id LIMIT 1", (tenant,)
        ).fetchone()
        assert row is not None
        changed = row[0]
    store = _ReportWhileWriting(archive_settings, changed)
    job = RetentionJob(archive_settings, db, store)
    async with job.started():
        summary = await job.run_once(tenant_id=tenant)

    assert store.reported and summary.ok
    mine = summary.tenants[0]
    assert mine.abandoned == 1 and mine.conversations == 3  # the batch again, with the report, in the same run
    with lf.admin(archive_settings.database_url) as conn:
        states = conn.execute(
            "SELECT state, count(*) FROM archive_batches WHERE tenant_id = %s GROUP BY state ORDER BY state", (tenant,)
        ).fetchall()
        abandoned = conn.execute(
            "SELECT id FROM archive_batches WHERE tenant_id = %s AND state = 'abandoned'", (tenant,)
        ).fetchone()
        assert lf.live_ids(conn, tenant) == set()
    assert states == [("abandoned", 1), ("archived", 1)]
    assert abandoned is not None
    keys = await store.keys(f"tenant={tenant}")
    assert keys and not [key for key in keys if str(abandoned[0]) in key]  # its objects are gone
    archived = await lf.archived_tables(store, tenant)
    assert set(archived) == set(TABLES)
    messages = {uuid.UUID(m["id"]): m for m in lf.rows_of(archived["messages"])}
    assert len(messages) == 6 and messages[changed]["status"] == "read"
    assert "row_version" not in messages[changed]  # the version is the fingerprint's, not part of the archive
