"""The retention job under faults: the archive store unreachable, and the job killed (SIGKILL) mid-batch."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from statemgr.config import Settings
from statemgr.jobs.archive_store import ArchiveStore
from statemgr.jobs.retention import RetentionJob
from statemgr.store.db import Database
from statemgr.store.lifecycle import TABLES
from tests.integration import lifecycle_fixtures as lf
from tests.integration.processes import free_port


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url, settings.db_role, 1, 4)
    await database.open()
    yield database
    await database.close()


def assert_archived_once(conversations: list[dict[str, object]], total: int) -> None:
    ids = [row["id"] for row in conversations]
    assert len(ids) == total and len(set(ids)) == total, "a conversation is missing or archived twice"


async def test_unreachable_store_deletes_nothing_and_the_next_run_completes(
    settings: Settings, db: Database, moto: lf.MotoServer
) -> None:
    with lf.admin(settings.database_url) as conn:
        tenant = lf.insert_tenant(conn, closed_retention_days=30)
        lf.seed_closed(conn, tenant, 200, closed_days_ago=60, tag="old")
    errors_before = REGISTRY.get_sample_value("statemgr_archive_store_errors_total") or 0.0
    bucket = moto.bucket()
    with lf.aws_environment():
        # nothing listens on this port: every request is refused
        down = dataclasses.replace(
            settings,
            archive_url=f"s3://{bucket}/a",
            archive_s3_endpoint=f"http://127.0.0.1:{free_port()}",
            archive_timeout_seconds=2.0,
            retention_batch_size=50,
            retention_pause_ratio=0,
        )
        job = RetentionJob(down, db)
        async with job.started():
            failed = await job.run_once(tenant)
        assert not failed.ok and "cannot write" in failed.tenants[0].error
        assert (REGISTRY.get_sample_value("statemgr_archive_store_errors_total") or 0.0) == errors_before + 1
        with lf.admin(settings.database_url) as conn:
            assert len(lf.live_ids(conn, tenant, "old")) == 200
            assert {t: lf.count_rows(conn, t, tenant) for t in ("messages", "parked_statuses")} == {
                "messages": 400,
                "parked_statuses": 200,
            }
            pending = conn.execute("SELECT state, count(*) FROM archive_batches GROUP BY 1").fetchall()
        assert pending == [("pending", 1)]  # the batch it could not write waits for the next run

        up = dataclasses.replace(down, archive_s3_endpoint=moto.endpoint)
        job = RetentionJob(up, db)
        async with job.started():
            done = await job.run_once(tenant)
        assert done.ok and done.tenants[0].conversations == 200
        archived = await lf.archived_tables(ArchiveStore.from_settings(up), tenant)
    with lf.admin(settings.database_url) as conn:
        assert lf.live_ids(conn, tenant, "old") == set()
        assert conn.execute("SELECT state, count(*) FROM archive_batches GROUP BY 1").fetchall() == [("archived", 4)]
    assert_archived_once(lf.rows_of(archived["conversations"]), 200)
    assert len(lf.rows_of(archived["messages"])) == 400


async def test_killed_mid_batch_then_rerun_loses_nothing_and_archives_nothing_twice(
    settings: Settings, tmp_path: Path
) -> None:
    with lf.admin(settings.database_url) as conn:
        tenant = lf.insert_tenant(conn, closed_retention_days=30)
        lf.seed_closed(conn, tenant, 1000, closed_days_ago=60, tag="old")
        messages = {row[0] for row in conn.execute("SELECT id FROM messages WHERE tenant_id = %s", (tenant,))}
    archive_url = str(tmp_path / "archive")
    env = lf.cli_env(
        settings.database_url, archive_url, STATEMGR_RETENTION_BATCH_SIZE="25", STATEMGR_RETENTION_PAUSE_RATIO="1"
    )
    command = [sys.executable, "-m", "statemgr.cli", "retention", "run", "--tenant", str(tenant)]
    proc = await asyncio.create_subprocess_exec(*command, env={**os.environ, **env}, stdout=asyncio.subprocess.DEVNULL)
    # kill it while a batch is in flight, after a few have completed
    deadline = time.monotonic() + 60
    with lf.admin(settings.database_url) as conn:
        while time.monotonic() < deadline:
            states = dict(conn.execute("SELECT state, count(*) FROM archive_batches GROUP BY 1").fetchall())
            if states.get("archived", 0) >= 3 and states.get("pending", 0) >= 1:
                break
            await asyncio.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        states = dict(conn.execute("SELECT state, count(*) FROM archive_batches GROUP BY 1").fetchall())
    assert proc.returncode == -signal.SIGKILL
    assert 0 < states.get("archived", 0) < 40, f"killed too late or too early: {states}"

    code, out = await lf.run_cli(env, "retention", "run", "--tenant", str(tenant))
    assert code == 0, out
    with lf.admin(settings.database_url) as conn:
        assert lf.live_ids(conn, tenant, "old") == set()
        states = dict(conn.execute("SELECT state, count(*) FROM archive_batches GROUP BY 1").fetchall())
        manifest_keys = {row[0] for row in conn.execute("SELECT object_key FROM archive_objects")}
    assert set(states) == {"archived"} and states["archived"] == 40
    archive = ArchiveStore(archive_url)
    assert set(await archive.keys()) == manifest_keys and len(manifest_keys) == 40 * len(TABLES)
    archived = await lf.archived_tables(archive, tenant)
    assert_archived_once(lf.rows_of(archived["conversations"]), 1000)
    archived_messages = [uuid.UUID(row["id"]) for row in lf.rows_of(archived["messages"])]
    assert len(archived_messages) == 2000 and set(archived_messages) == messages
