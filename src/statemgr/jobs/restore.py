"""Restore of an archived conversation into the live tables (`statemgr archive restore`).

The conversation's batch is locked, each of its objects is read and checked against the manifest's checksum, the
conversation's rows are inserted as they were archived (parents first), and its place is marked restored, in one
transaction. A restored conversation stays live for one `closed_conversation_retention` before the job may archive
it again (in a new batch; the old objects keep their copy until they expire).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import psycopg

from statemgr.cache import Cache, keys
from statemgr.domain.errors import FailedPrecondition, NotFound
from statemgr.jobs import parquet
from statemgr.jobs.archive_store import ArchiveStore, ArchiveUnavailable
from statemgr.store import lifecycle as store
from statemgr.store.db import Database
from statemgr.store.lifecycle import TABLES, StoredObject


@dataclasses.dataclass(frozen=True, slots=True)
class Restored:
    batch_id: uuid.UUID
    rows: dict[str, int]


async def restore_conversation(
    db: Database, archive: ArchiveStore, cache: Cache, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> Restored:
    """Refused, changing nothing: FAILED_PRECONDITION CONVERSATION_LIVE when the conversation is live (restored
    already, or never archived), RESTORE_CONFLICT when a live row holds one of its rows' unique keys; NOT_FOUND when
    no archive holds it."""
    async with store.transaction(db, tenant_id) as conn:
        if await store.conversation_exists(conn, tenant_id, conversation_id):
            raise FailedPrecondition(
                "CONVERSATION_LIVE", f"conversation {conversation_id} is in the live tables already; nothing restored"
            )
        batch_id = await store.find_archived(conn, tenant_id, conversation_id)
        if batch_id is None:
            raise NotFound("archived conversation", str(conversation_id))
        await store.lock_batch(conn, tenant_id, batch_id)
        objects = {obj.table_name: obj for obj in await store.batch_objects(conn, tenant_id, batch_id)}
        counts: dict[str, int] = {}
        rows = _Selection(str(conversation_id))
        for table in TABLES:
            obj = objects.get(table)
            if obj is None:
                continue
            selected = rows.of(table, parquet.read(await _verified(archive, obj)))
            try:
                await store.insert_rows(conn, table, selected)
            except psycopg.errors.UniqueViolation as exc:  # e.g. a provider message id recorded again since
                raise FailedPrecondition(
                    "RESTORE_CONFLICT",
                    f"a live {table} row has the same key ({exc.diag.constraint_name}); nothing restored",
                ) from exc
            counts[table] = len(selected)
        await store.mark_restored(conn, tenant_id, batch_id, conversation_id)
    await cache.invalidate(tenant_id, keys.conversation_keys(tenant_id, conversation_id))
    return Restored(batch_id, counts)


async def _verified(archive: ArchiveStore, obj: StoredObject) -> bytes:
    data = await archive.get(obj.object_key)
    if parquet.checksum(data) != obj.sha256:
        raise ArchiveUnavailable(f"{obj.object_key} does not match its manifest checksum")
    return data


class _Selection:
    """Picks one conversation's rows from each table (parked reports by its messages' provider ids)."""

    def __init__(self, conversation_id: str) -> None:
        self._id = conversation_id
        self._message_ids: set[str] = set()

    def of(self, table: str, archived: Any) -> list[dict[str, Any]]:
        if table == "conversations":
            return parquet.restorable_rows(archived, lambda row: row["id"] == self._id)
        if table == "parked_statuses":
            ids = self._message_ids
            return parquet.restorable_rows(
                archived, lambda row: bool({row["whatsapp_message_id"], row["genesys_message_id"]} & ids)
            )
        selected = parquet.restorable_rows(archived, lambda row: row["conversation_id"] == self._id)
        if table == "messages":
            for row in selected:
                self._message_ids.update(v for v in (row["whatsapp_message_id"], row["genesys_message_id"]) if v)
        return selected
