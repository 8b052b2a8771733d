"""Helpers of the lifecycle tests: an S3-protocol server (moto's standalone server) on a free port, data seeded
with SQL, archive objects read back, and the retention CLI as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
import pyarrow as pa

from statemgr.jobs import parquet
from statemgr.jobs.archive_store import ArchiveStore
from tests.integration.processes import free_port

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


class MotoServer:
    """`python -m moto.server` on 127.0.0.1:<free port>; stopped (and its buckets gone) at close."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self._proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            time.sleep(0.1)
        self.close()
        raise TimeoutError("moto server did not start")

    def bucket(self) -> str:
        name = f"statemgr-test-{uuid.uuid4().hex[:10]}"
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{name}", method="PUT"), timeout=10)
        return name

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


@contextlib.contextmanager
def aws_environment() -> Iterator[None]:
    """The AWS_* variables obstore reads for the moto server's (fake) credentials, for the test's duration."""
    saved = {name: os.environ.get(name) for name in S3_CREDENTIALS}
    os.environ.update(S3_CREDENTIALS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def admin(database_url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """A superuser connection (row-level security does not apply) for seeding and checking."""
    return psycopg.connect(database_url, autocommit=True)


def insert_tenant(
    conn: psycopg.Connection[tuple[Any, ...]], closed_retention_days: int, archive_days: int = 365
) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO tenants (id, display_name, closed_conversation_retention, archive_retention)"
        " VALUES (%s, 'T', make_interval(days => %s), make_interval(days => %s))",
        (tenant_id, closed_retention_days, archive_days),
    )
    return tenant_id


def seed_closed(
    conn: psycopg.Connection[tuple[Any, ...]], tenant_id: uuid.UUID, count: int, closed_days_ago: int, tag: str
) -> None:
    """`count` closed conversations, closed `closed_days_ago` days ago, each with a transition, an assignment,
    two messages (one with a status history row and a media URL) and a parked report for its outbound message's
    Genesys id. Generated in SQL (generate_series), so thousands take a moment."""
    params = {"tenant_id": tenant_id, "count": count, "days": closed_days_ago, "tag": tag}
    conn.execute(
        """
        INSERT INTO conversations (tenant_id, id, whatsapp_conversation_id, state, created_at, closed_at,
                                   last_activity, metadata)
        SELECT %(tenant_id)s, gen_random_uuid(), %(tag)s || '-wa-' || n, 'closed',
               now() - make_interval(days => %(days)s + 1), now() - make_interval(days => %(days)s),
               now() - make_interval(days => %(days)s), jsonb_build_object('n', n, 'tag', %(tag)s)
        FROM generate_series(1, %(count)s) AS n
        """,
        params,
    )
    conn.execute(
        """
        WITH c AS (SELECT id, whatsapp_conversation_id AS wa FROM conversations
                   WHERE tenant_id = %(tenant_id)s AND whatsapp_conversation_id LIKE %(tag)s || '-wa-%%'),
        t AS (INSERT INTO conversation_state_transitions (tenant_id, id, conversation_id, from_state, to_state, reason)
              SELECT %(tenant_id)s, gen_random_uuid(), id, 'active', 'closed', 'done ' || wa FROM c),
        a AS (INSERT INTO conversation_assignments (tenant_id, id, conversation_id, to_agent_id, reason)
              SELECT %(tenant_id)s, gen_random_uuid(), id, gen_random_uuid(), 'route' FROM c),
        m AS (INSERT INTO messages (tenant_id, id, conversation_id, whatsapp_message_id, genesys_message_id,
                                    direction, status, content, media_urls, sent_at)
              SELECT %(tenant_id)s, gen_random_uuid(), id, 'wamid.' || wa || '.' || k,
                     CASE WHEN k = 2 THEN 'gen.' || wa END, CASE WHEN k = 1 THEN 'inbound' ELSE 'outbound' END,
                     'delivered', 'text ' || wa || ' #' || k,
                     CASE WHEN k = 1 THEN ARRAY['https://m/' || wa] ELSE '{}' END,
                     now() - make_interval(days => %(days)s + 1)
              FROM c CROSS JOIN generate_series(1, 2) AS k
              RETURNING id, conversation_id, genesys_message_id)
        INSERT INTO message_status_history (tenant_id, message_id, conversation_id, status, status_changed, status_time)
        SELECT %(tenant_id)s, id, conversation_id, 'delivered', true, now() FROM m
        """,
        params,
    )
    conn.execute(
        """
        INSERT INTO parked_statuses (tenant_id, genesys_message_id, status, status_time, expires_at)
        SELECT %(tenant_id)s, 'gen.' || whatsapp_conversation_id, 'read', now(), now() + interval '1 day'
        FROM conversations WHERE tenant_id = %(tenant_id)s AND whatsapp_conversation_id LIKE %(tag)s || '-wa-%%'
        """,
        params,
    )


def live_ids(conn: psycopg.Connection[tuple[Any, ...]], tenant_id: uuid.UUID, tag: str = "") -> set[uuid.UUID]:
    rows = conn.execute(
        "SELECT id FROM conversations WHERE tenant_id = %s AND whatsapp_conversation_id LIKE %s",
        (tenant_id, f"{tag}%"),
    ).fetchall()
    return {row[0] for row in rows}


def count_rows(conn: psycopg.Connection[tuple[Any, ...]], table: str, tenant_id: uuid.UUID) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", (tenant_id,)).fetchone()
    return int(row[0]) if row else 0


async def archived_tables(archive: ArchiveStore, tenant_id: uuid.UUID) -> dict[str, list[pa.Table]]:
    """Every archive object of the tenant, parsed, by table (from the store's listing, not the manifest)."""
    out: dict[str, list[pa.Table]] = {}
    for key in await archive.keys(f"tenant={tenant_id}"):
        table = key.split("/")[-2]
        out.setdefault(table, []).append(parquet.read(await archive.get(key)))
    return out


def rows_of(tables: list[pa.Table]) -> list[dict[str, Any]]:
    return [row for table in tables for row in table.to_pylist()]


async def run_cli(env: Mapping[str, str], *args: str, timeout: float = 120.0) -> tuple[int, str]:
    """`python -m statemgr.cli <args>`; its exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statemgr.cli",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return int(proc.returncode or 0), out.decode()


def cli_env(database_url: str, archive_url: str, **extra: str) -> dict[str, str]:
    return {
        "STATEMGR_DATABASE_URL": database_url,
        "STATEMGR_ARCHIVE_URL": archive_url,
        "STATEMGR_REDIS_URL": "",
        "STATEMGR_AMQP_URL": "",
        "STATEMGR_LOG_LEVEL": "warning",
        "STATEMGR_RETENTION_PAUSE_RATIO": "0",
        **extra,
    }


def json_equal(text: str, value: Any) -> bool:
    import json

    return bool(json.loads(text) == value)


def same_instant(archived: Any, rendered: str) -> bool:
    """An archived timestamp (datetime) equals PostgreSQL's JSON rendering of it, to the microsecond."""
    import datetime as dt

    return bool(archived == dt.datetime.fromisoformat(rendered))
