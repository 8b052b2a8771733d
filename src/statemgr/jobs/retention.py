"""The retention job: applies each tenant's RetentionPolicy (docs/retention.md).

Closed conversations older than `closed_conversation_retention` leave the live tables with everything that
belongs to them, in batches of at most STATEMGR_RETENTION_BATCH_SIZE conversations and
STATEMGR_RETENTION_BATCH_MESSAGES messages (the rows that dominate a batch: each message has its status history),
so every transaction of a batch is short whatever the conversations' lengths. Each batch is:

1. claimed: a pending batch row and the conversations' places (archived_conversations) in one short transaction;
2. read: its rows, per table, with their fingerprint (count and sum of row versions, xmin, per table);
3. written as Parquet objects, each read back and checked (row count, SHA-256);
4. finished in one transaction: the conversations locked, the rows deleted (children first), each table's delete
   returning the fingerprint of what it deleted; a fingerprint that differs from the one read (a row changed
   meanwhile) rolls the deletes back and abandons the batch (its objects are deleted and its conversations are
   free for a later batch); else the manifest is recorded and the batch marked archived.

A crash anywhere leaves the batch pending: the next run redoes it under the same id and object keys, so nothing is
lost and nothing is archived twice. An unreachable archive store stops the tenant's run before any delete.
Archives older than `archive_retention` are deleted (objects first, then the manifest). Erasures whose archive
rewrite did not finish are finished here too.

One run at a time in the cluster (a PostgreSQL advisory lock): the leader runs it every
STATEMGR_RETENTION_INTERVAL_SECONDS; `statemgr retention run` runs it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import psycopg
import structlog

from statemgr.cache import Cache, keys
from statemgr.config import Settings
from statemgr.jobs import metrics, parquet
from statemgr.jobs.archive_store import ArchiveStore, ArchiveUnavailable, object_key
from statemgr.jobs.erasure import Eraser
from statemgr.store import lifecycle as store
from statemgr.store.db import Connection, Database
from statemgr.store.lifecycle import TABLES, Batch, Columns, Policy, StoredObject, Versions

_log = structlog.get_logger("statemgr.jobs.retention")

# Any constant every statemgr process shares; "smretain" in ASCII.
RUN_LOCK_KEY = 0x736D72657461696E
FIRST_RUN_DELAY = 60.0
_EXPIRE_PAGE = 100
_MAX_ABANDONED = 3  # a tenant whose rows keep changing under the job waits for the next run


@dataclasses.dataclass
class TenantSummary:
    """What one run did for one tenant (a dry run fills `due` and `expired_due` only)."""

    tenant_id: uuid.UUID
    due: int = 0
    expired_due: int = 0
    batches: int = 0
    conversations: int = 0
    rows: dict[str, int] = dataclasses.field(default_factory=dict)
    bytes: int = 0
    abandoned: int = 0
    expired: int = 0
    erasures_finished: int = 0
    error: str = ""


@dataclasses.dataclass
class RunSummary:
    tenants: list[TenantSummary]
    seconds: float
    skipped: bool = False  # another run held the lock

    @property
    def ok(self) -> bool:
        return not self.skipped and not any(t.error for t in self.tenants)


Progress = Callable[[TenantSummary], None]


class UnknownTenant(LookupError):
    """`--tenant` names no tenant."""


class RetentionJob:
    """Built from the settings and the service's pool, without I/O. `run` is the leader's duty loop; `run_once`
    one pass (the CLI's). It needs a started cache to invalidate what it deletes: `started` gives it one."""

    def __init__(self, settings: Settings, db: Database, store: ArchiveStore | None = None) -> None:
        self._db = db
        self._lock_url = settings.direct_database_url
        self._interval = settings.retention_interval_seconds
        self._batch_size = settings.retention_batch_size
        self._batch_messages = settings.retention_batch_messages
        self._pause_ratio = settings.retention_pause_ratio
        self._store = store or ArchiveStore.from_settings(settings)
        self._cache = Cache.build(settings)
        self._eraser = Eraser(db, self._cache, self._store)

    @property
    def cache(self) -> Cache:
        return self._cache

    @contextlib.asynccontextmanager
    async def started(self) -> AsyncIterator[RetentionJob]:
        await self._cache.start()
        try:
            yield self
        finally:
            await self._cache.stop()

    async def run(self, conn: Connection) -> None:
        """The leader's duty: a run every interval (the first a minute after taking the lead, or sooner with a
        shorter interval) until cancelled. The tenant work uses the pool, not `conn`
        (the relay's connection), so the job does not depend on where the leader's duties run."""
        async with self.started():
            await asyncio.sleep(min(self._interval, FIRST_RUN_DELAY))  # let a starting server settle first
            while True:
                try:
                    await self.run_once()
                except Exception:
                    _log.exception("retention_run_failed")
                await asyncio.sleep(self._interval)

    async def run_once(
        self, tenant_id: uuid.UUID | None = None, dry_run: bool = False, progress: Progress | None = None
    ) -> RunSummary:
        start = time.monotonic()
        async with self._run_lock() as taken:
            if not taken:
                _log.info("retention_run_skipped", reason="another run holds the lock")
                return RunSummary([], 0.0, skipped=True)
            policies = await store.policies(self._db, tenant_id)
            if tenant_id is not None and not policies:
                raise UnknownTenant(str(tenant_id))
            summaries = [await self._tenant(policy, dry_run, progress) for policy in policies]
        seconds = time.monotonic() - start
        if not dry_run:
            metrics.RUN_DURATION.observe(seconds)
        return RunSummary(summaries, seconds)

    @contextlib.asynccontextmanager
    async def _run_lock(self) -> AsyncIterator[bool]:
        """The run's advisory lock, on a connection of its own to PostgreSQL itself (a session lock would not
        survive a pooler in transaction mode); closing the connection releases it, as a crash does."""
        async with await psycopg.AsyncConnection.connect(self._lock_url, autocommit=True) as conn:
            row = await (await conn.execute(store.Q["try_run_lock"], {"key": RUN_LOCK_KEY})).fetchone()
            yield bool(row and row[0])

    async def _tenant(self, policy: Policy, dry_run: bool, progress: Progress | None) -> TenantSummary:
        summary = TenantSummary(policy.tenant_id)
        if dry_run:
            async with store.transaction(self._db, policy.tenant_id) as conn:
                summary.due = await store.count_due(conn, policy.tenant_id, policy.closed_conversation_retention)
                summary.expired_due = await store.count_expired(conn, policy.tenant_id, policy.archive_retention)
            return summary
        try:
            summary.erasures_finished = await self._eraser.finish_pending(policy.tenant_id)
            await self._archive_due(policy, summary, progress)
            await self._expire(policy, summary)
        except ArchiveUnavailable as exc:
            summary.error = str(exc)
            metrics.STORE_ERRORS.inc()
            _log.warning("archive_store_unavailable", tenant_id=str(policy.tenant_id), error=str(exc))
            return summary
        metrics.LAST_SUCCESS.labels(str(policy.tenant_id)).set(time.time())
        if summary.conversations or summary.expired:
            _log.info(
                "retention_tenant_done",
                tenant_id=str(policy.tenant_id),
                conversations=summary.conversations,
                rows=summary.rows,
                bytes=summary.bytes,
                expired_batches=summary.expired,
            )
        return summary

    async def _archive_due(self, policy: Policy, summary: TenantSummary, progress: Progress | None) -> None:
        tenant_id = policy.tenant_id
        async with store.transaction(self._db, tenant_id) as conn:
            pending = await store.pending_batches(conn, tenant_id)
        for batch in pending:  # left by a run that stopped (a crash, the store down): redone under the same keys
            async with store.transaction(self._db, tenant_id) as conn:
                ids = await store.batch_conversations(conn, tenant_id, batch.id)
            await self._archive(tenant_id, batch, ids, summary, progress)
        while summary.abandoned < _MAX_ABANDONED:
            batch = Batch(uuid.uuid4(), dt.datetime.now(dt.UTC).date())
            started = time.monotonic()
            with _step("claim"):
                async with store.transaction(self._db, tenant_id) as conn:
                    retention = policy.closed_conversation_retention
                    ids = await store.claim_batch(
                        conn, tenant_id, batch, retention, self._batch_size, self._batch_messages
                    )
            if not ids:
                return
            await self._archive(tenant_id, batch, ids, summary, progress)
            await self._pause(time.monotonic() - started)

    async def _pause(self, worked: float) -> None:
        """Yields the machine to the hot path for `worked` x STATEMGR_RETENTION_PAUSE_RATIO: the job's share of
        the database and the disk shrinks by itself when a loaded machine makes its batches slower."""
        if self._pause_ratio > 0:
            await asyncio.sleep(worked * self._pause_ratio)

    async def _archive(
        self,
        tenant_id: uuid.UUID,
        batch: Batch,
        ids: list[uuid.UUID],
        summary: TenantSummary,
        progress: Progress | None,
    ) -> None:
        with _step("read"):
            async with store.transaction(self._db, tenant_id) as conn:
                tables = {table: await store.read_table(conn, table, tenant_id, ids) for table in TABLES}
        with _step("write"):
            stored = await asyncio.gather(
                *(self._write(tenant_id, batch, table, columns) for table, columns in tables.items())
            )
        with _step("finish"):
            finished = await self._finish(tenant_id, batch, ids, _fingerprint(tables), stored)
        if not finished:
            summary.abandoned += 1
            metrics.BATCHES.labels("abandoned").inc()
            _log.info("archive_batch_abandoned", tenant_id=str(tenant_id), batch_id=str(batch.id))
            return
        await self._cache.invalidate(tenant_id, _conversation_keys(tenant_id, tables["conversations"]))
        _count(summary, tables, stored)
        if progress is not None:
            progress(summary)

    async def _write(self, tenant_id: uuid.UUID, batch: Batch, table: str, columns: Columns) -> StoredObject:
        """Writes one table's rows, reads them back and checks them; the manifest entry of the verified object."""
        key = object_key(tenant_id, batch.archive_date, table, batch.id)
        metadata = {"statemgr.tenant_id": str(tenant_id), "statemgr.batch_id": str(batch.id), "statemgr.table": table}
        # Off the event loop: in the background process the relay and the consumer share it with this job.
        data = await asyncio.to_thread(parquet.encode, columns, metadata)
        await self._store.put(key, data)
        read_back = await self._store.get(key)
        return await asyncio.to_thread(parquet.verified, key, table, data, read_back, len(columns.rows))

    async def _finish(
        self,
        tenant_id: uuid.UUID,
        batch: Batch,
        ids: list[uuid.UUID],
        fingerprint: dict[str, Versions],
        stored: list[StoredObject],
    ) -> bool:
        """Records the manifest and deletes the rows, if they are as they were read; else abandons the batch."""
        try:
            async with store.transaction(self._db, tenant_id) as conn:
                if await store.lock_batch(conn, tenant_id, batch.id) != "pending":
                    return True  # another run finished it meanwhile
                await store.lock_conversations(conn, tenant_id, ids)
                if await store.purge_batch_rows(conn, tenant_id, ids) != fingerprint:
                    raise _RowsChanged  # rolls the purge back
                for obj in stored:
                    await store.record_object(conn, tenant_id, batch.id, obj)
                await store.mark_archived(conn, tenant_id, batch.id)
        except _RowsChanged:
            await self._abandon(tenant_id, batch, stored)
            return False
        return True

    async def _abandon(self, tenant_id: uuid.UUID, batch: Batch, stored: list[StoredObject]) -> None:
        """Deletes the batch's objects and frees its conversations for a later batch."""
        async with store.transaction(self._db, tenant_id) as conn:
            if await store.lock_batch(conn, tenant_id, batch.id) != "pending":
                return
            for obj in stored:
                await self._store.delete(obj.object_key)
            await store.abandon_batch(conn, tenant_id, batch.id)

    async def _expire(self, policy: Policy, summary: TenantSummary) -> None:
        tenant_id = policy.tenant_id
        while True:
            async with store.transaction(self._db, tenant_id) as conn:
                batches = await store.expired_batches(conn, tenant_id, policy.archive_retention, _EXPIRE_PAGE)
            for batch in batches:
                async with store.transaction(self._db, tenant_id) as conn:
                    if await store.lock_batch(conn, tenant_id, batch.id) != "archived":
                        continue
                    for obj in await store.batch_objects(conn, tenant_id, batch.id):
                        await self._store.delete(obj.object_key)
                    await store.expire_batch(conn, tenant_id, batch.id)
                summary.expired += 1
                metrics.BATCHES.labels("expired").inc()
            if len(batches) < _EXPIRE_PAGE:
                return


class _RowsChanged(Exception):
    """A batch's rows changed between their reading and their purge."""


def _fingerprint(tables: dict[str, Columns]) -> dict[str, Versions]:
    return {table: columns.versions for table, columns in tables.items()}


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        metrics.BATCH_STEP_SECONDS.labels(name).observe(time.perf_counter() - started)


def _count(summary: TenantSummary, tables: dict[str, Columns], stored: list[StoredObject]) -> None:
    summary.batches += 1
    summary.conversations += len(tables["conversations"].rows)
    metrics.BATCHES.labels("archived").inc()
    for obj in stored:
        summary.rows[obj.table_name] = summary.rows.get(obj.table_name, 0) + obj.row_count
        summary.bytes += obj.byte_count
        metrics.ROWS_ARCHIVED.labels(obj.table_name).inc(obj.row_count)
        metrics.ROWS_DELETED.labels(obj.table_name).inc(obj.row_count)
        metrics.ARCHIVE_BYTES.inc(obj.byte_count)


def _conversation_keys(tenant_id: uuid.UUID, conversations: Columns) -> list[keys.Key]:
    """The cache keys of archived conversations: by id, WhatsApp id, and every Genesys id they had."""
    index = {name: i for i, name in enumerate(conversations.names)}
    out: list[keys.Key] = []
    for row in conversations.rows:
        genesys = [row[index["genesys_conversation_id"]] or "", *row[index["previous_genesys_conversation_ids"]]]
        out.extend(keys.conversation_keys(tenant_id, row[index["id"]], row[index["whatsapp_conversation_id"]], genesys))
    return out
