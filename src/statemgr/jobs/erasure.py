"""GDPR erasure of one customer (CustomerService.EraseCustomer), everywhere their data reached (docs/retention.md).

One transaction as statemgr_lifecycle: the customer's row locked first (every writer of the customer's data locks
it or a row after it in the same order: the customer, its conversations, their messages), then the live data
anonymised (store.lifecycle.erase_live), `customer.erased` (and `conversation.closed` for each conversation it
closed) appended to the outbox, and the audit row written. After the commit both cache tiers of every process
drop the customer's and the conversations' keys (Cache.invalidate publishes to the other processes), and every
archived batch holding the customer's conversations is rewritten with the same anonymisation, its manifest entry
updated; the audit is complete when the last one is. If the archive store is down, the call answers UNAVAILABLE
with the live data already erased; calling again (or the next retention run) finishes the archives, even where
the store failed part way through a batch (Eraser._scrubbed). A repeat answers the first call's audit id.

The anonymised records stay (conversations, messages, statuses: analytics figures hold), keyed by placeholders
("erased:<id>") where the key was personal: the customer's WhatsApp id, the WhatsApp conversation id (usually the
number), WhatsApp message ids (which encode it). So the next message from that number starts a fresh customer.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from psycopg import errors as pg_errors

from statemgr.cache import Cache, keys
from statemgr.domain.errors import Aborted, NotFound, Unavailable
from statemgr.domain.events import Event, EventType
from statemgr.events import outbox
from statemgr.jobs import metrics
from statemgr.jobs.archive_store import ArchiveStore, ArchiveUnavailable
from statemgr.store import lifecycle as store
from statemgr.store.db import Connection, Database
from statemgr.store.lifecycle import ErasedConversation, ErasedCustomer, StoredObject

_log = structlog.get_logger("statemgr.jobs.erasure")

ERASED = "erased:"
_ATTEMPTS = 3
# A concurrent writer or a concurrent erasure of the same customer: the transaction is tried again.
_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.UniqueViolation)


class Eraser:
    def __init__(self, db: Database, cache: Cache, archive: ArchiveStore) -> None:
        self._db = db
        self._cache = cache
        self._archive = archive

    async def erase(self, tenant_id: uuid.UUID, customer_id: uuid.UUID, api_key_id: uuid.UUID | None) -> uuid.UUID:
        """Erases the customer; the audit id (the first call's, for a repeat). NOT_FOUND for an unknown customer;
        UNAVAILABLE when the archive store cannot be rewritten now (the live data is erased by then)."""
        audit_id, complete = await self._erase_live(tenant_id, customer_id, api_key_id)
        if not complete:
            try:
                await self.finish(tenant_id, audit_id, customer_id)
            except ArchiveUnavailable as exc:
                metrics.STORE_ERRORS.inc()
                _log.warning("erasure_archives_pending", tenant_id=str(tenant_id), audit_id=str(audit_id))
                raise Unavailable(
                    "the customer's live data is erased; the archive store is unreachable, so their archived "
                    "rows are not rewritten yet: call again (the next retention run also finishes it)"
                ) from exc
        return audit_id

    async def finish_pending(self, tenant_id: uuid.UUID) -> int:
        """Finishes the tenant's erasures whose archives were not all rewritten; how many it finished."""
        async with store.transaction(self._db, tenant_id) as conn:
            pending = await store.incomplete_audits(conn, tenant_id)
        for audit_id, customer_id in pending:
            await self.finish(tenant_id, audit_id, customer_id)
        return len(pending)

    async def finish(self, tenant_id: uuid.UUID, audit_id: uuid.UUID, customer_id: uuid.UUID) -> None:
        """Rewrites every archived batch holding the customer's conversations; then the audit is complete."""
        async with store.transaction(self._db, tenant_id) as conn:
            parts = await store.customer_batches(conn, tenant_id, customer_id)
        rewritten = 0
        for part in parts:
            rewritten += await self._rewrite_batch(tenant_id, part)
        async with store.transaction(self._db, tenant_id) as conn:
            await store.complete_audit(conn, tenant_id, audit_id, {"archive_objects": rewritten})

    async def _erase_live(
        self, tenant_id: uuid.UUID, customer_id: uuid.UUID, api_key_id: uuid.UUID | None
    ) -> tuple[uuid.UUID, bool]:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with store.transaction(self._db, tenant_id) as conn:
                    audit = await store.find_audit(conn, tenant_id, customer_id)
                    if audit is not None:
                        return audit.id, audit.completed
                    audit_id, customer, conversations = await _erase_in(conn, tenant_id, customer_id, api_key_id)
            except _RETRYABLE as exc:
                if attempt == _ATTEMPTS:
                    raise Aborted("the customer is being changed concurrently; retry the erasure") from exc
                continue
            metrics.ERASURES.inc()
            _log.info("customer_erased", tenant_id=str(tenant_id), audit_id=str(audit_id))
            await self._cache.invalidate(tenant_id, _cache_keys(tenant_id, customer, conversations))
            return audit_id, False
        raise AssertionError("unreachable")

    async def _rewrite_batch(self, tenant_id: uuid.UUID, part: store.ArchivedPart) -> int:
        """Rewrites the batch's objects that hold the conversations' rows; how many it rewrote."""
        async with store.transaction(self._db, tenant_id) as conn:
            if await store.lock_batch(conn, tenant_id, part.batch_id) != "archived":
                return 0  # expired meanwhile: nothing left to rewrite
            objects = await store.batch_objects(conn, tenant_id, part.batch_id)
            rewrites = await self._scrubbed(objects, Scrub(set(map(str, part.conversation_ids))))
            for rewrite in rewrites:
                await store.record_object(conn, tenant_id, part.batch_id, await self._put(rewrite))
            await store.mark_rewritten(conn, tenant_id, part.batch_id)
        return len(rewrites)

    async def _scrubbed(self, objects: list[StoredObject], scrub: Scrub) -> list[_Rewrite]:
        """The objects to write, with their new content: each holding the customer's rows, anonymised, and each an
        earlier attempt rewrote without recording it (its content no longer matches the manifest).

        All are read before any is written, and parked reports are written before messages: they are matched by
        the messages' provider ids, which the messages' rewrite replaces. So an attempt the store stops part way
        leaves the next attempt all it needs to finish the same work."""
        # Imported here: pyarrow costs a gRPC worker about 0.4 s at start, and only an erasure of archived rows
        # needs it.
        from statemgr.jobs import parquet

        rewrites: list[_Rewrite] = []
        for obj in objects:  # messages sort before parked_statuses: the reports are matched by their ids
            data = await self._archive.get(obj.object_key)
            table = parquet.read(data)
            kept = scrub.rows(obj.table_name, table.to_pylist())
            if kept is not None:
                rewrites.append(
                    _Rewrite(obj, parquet.write(type(table).from_pylist(kept, schema=table.schema)), len(kept))
                )
            elif parquet.checksum(data) != obj.sha256:
                rewrites.append(_Rewrite(obj, data, table.num_rows))
        rewrites.sort(key=lambda rewrite: rewrite.obj.table_name != "parked_statuses")
        return rewrites

    async def _put(self, rewrite: _Rewrite) -> StoredObject:
        """Writes the object, reads it back and checks it; its new manifest entry."""
        from statemgr.jobs import parquet

        key = rewrite.obj.object_key
        await self._archive.put(key, rewrite.data)
        read_back = await self._archive.get(key)
        return parquet.verified(key, rewrite.obj.table_name, rewrite.data, read_back, rewrite.rows)


@dataclasses.dataclass(frozen=True, slots=True)
class _Rewrite:
    obj: StoredObject
    data: bytes
    rows: int


async def _erase_in(
    conn: Connection, tenant_id: uuid.UUID, customer_id: uuid.UUID, api_key_id: uuid.UUID | None
) -> tuple[uuid.UUID, ErasedCustomer, list[ErasedConversation]]:
    customer = await store.lock_customer(conn, tenant_id, customer_id)
    if customer is None:
        raise NotFound("customer", str(customer_id))
    conversations = await store.lock_customer_conversations(conn, tenant_id, customer_id)
    counts = await store.erase_live(conn, tenant_id, customer_id, conversations)
    for conversation in conversations:
        if conversation.state != "closed":
            closed = Event(EventType.CONVERSATION_CLOSED, conversation.id, customer_id, conversation_state="closed")
            await outbox.append(conn, tenant_id, closed)
    await outbox.append(conn, tenant_id, Event(EventType.CUSTOMER_ERASED, customer_id=customer_id))
    audit_id = uuid.uuid4()
    await store.insert_audit(conn, tenant_id, audit_id, customer_id, api_key_id, counts)
    return audit_id, customer, conversations


class Scrub:
    """The live anonymisation (queries/lifecycle.sql's erase_*) applied to archived rows of some conversations."""

    def __init__(self, conversation_ids: set[str]) -> None:
        self._conversations = conversation_ids
        self._message_ids: set[str] = set()  # provider ids of their messages, for the parked reports

    def rows(self, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The rows anonymised (parked reports of the messages removed); None when none is the customer's."""
        if table == "parked_statuses":
            kept = [r for r in rows if not ({r["whatsapp_message_id"], r["genesys_message_id"]} & self._message_ids)]
            return kept if len(kept) != len(rows) else None
        owner = "id" if table == "conversations" else "conversation_id"
        mine = [row for row in rows if row[owner] in self._conversations]
        if not mine:
            return None
        for row in mine:
            self._anonymise(table, row)
        return rows

    def _anonymise(self, table: str, row: dict[str, Any]) -> None:
        if table == "conversations":
            row["whatsapp_conversation_id"] = ERASED + row["id"]
            row["metadata"] = "{}"
        elif table in ("conversation_state_transitions", "conversation_assignments"):
            row["reason"] = ""
        elif table == "messages":
            self._message_ids.update(_present([row["whatsapp_message_id"], row["genesys_message_id"]]))
            row["content"] = ""
            row["media_urls"] = []
            if row["whatsapp_message_id"] is not None:
                row["whatsapp_message_id"] = ERASED + row["id"]
            if row["error_message"] is not None:
                row["error_message"] = ""


def _present(values: Iterable[str | None]) -> list[str]:
    return [v for v in values if v]


def _cache_keys(
    tenant_id: uuid.UUID, customer: ErasedCustomer, conversations: list[ErasedConversation]
) -> list[keys.Key]:
    out = keys.customer_keys(tenant_id, customer.id, customer.whatsapp_id, _present([customer.phone_number]))
    for c in conversations:
        out.extend(keys.conversation_keys(tenant_id, c.id, c.whatsapp_conversation_id, c.genesys_conversation_ids))
    return out
