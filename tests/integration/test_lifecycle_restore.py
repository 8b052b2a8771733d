"""Restore of an archived conversation: it reads back through the API exactly as it did before archiving."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from statemgr import server as server_mod
from statemgr.app import App
from statemgr.config import Settings
from statemgr.jobs.retention import RetentionJob
from statemgr.store.lifecycle import TABLES
from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import message_pb2 as pb
from statemgr.v1 import message_service_pb2 as ms
from statemgr.v1 import tenant_pb2
from statemgr.v1 import tenant_service_pb2 as ts
from tests.integration import lifecycle_fixtures as lf
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.test_customers import inbound, new_wa_id


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    yield dataclasses.replace(settings, archive_url=str(tmp_path / "archive"))


async def set_retention(clients: Clients, tenant: Client, days: int) -> None:
    policy = tenant_pb2.RetentionPolicy(
        tenant_id=tenant.tenant_id, closed_conversation_retention=duration_pb2.Duration(seconds=days * 86400)
    )
    mask = field_mask_pb2.FieldMask(paths=["closed_conversation_retention"])
    await clients.admin().tenants.UpdateRetentionPolicy(
        ts.UpdateRetentionPolicyRequest(retention_policy=policy, update_mask=mask)
    )


async def a_full_conversation(tenant: Client) -> str:
    """A conversation with inbound and outbound messages, statuses, a transfer, a Genesys mapping, then closed."""
    first = await inbound(tenant, new_wa_id(), content="Where is my order?", customer_name="Ada Lovelace")
    conversation_id = first.conversation.id
    mapped = cpb.Conversation(id=conversation_id, genesys_conversation_id="gen-" + uuid.uuid4().hex)
    mask = field_mask_pb2.FieldMask(paths=["genesys_conversation_id"])
    await tenant.conversations.UpdateConversation(cs.UpdateConversationRequest(conversation=mapped, update_mask=mask))
    await tenant.conversations.TransferConversation(
        cs.TransferConversationRequest(conversation_id=conversation_id, agent_id=str(uuid.uuid4()), reason="skills")
    )
    reply = pb.Message(
        conversation_id=conversation_id,
        direction=pb.MESSAGE_DIRECTION_OUTBOUND,
        whatsapp_message_id="wamid." + uuid.uuid4().hex,
        content="On its way",
        media_urls=["https://example.com/tracking.png"],
    )
    recorded = (await tenant.messages.RecordMessage(ms.RecordMessageRequest(message=reply))).message
    for status in (pb.MESSAGE_STATUS_SENT, pb.MESSAGE_STATUS_DELIVERED, pb.MESSAGE_STATUS_READ):
        await tenant.messages.UpdateMessageStatus(
            ms.UpdateMessageStatusRequest(whatsapp_message_id=recorded.whatsapp_message_id, status=status)
        )
    await tenant.conversations.CloseConversation(
        cs.CloseConversationRequest(conversation_id=conversation_id, reason="ok")
    )
    return conversation_id


async def read_all(tenant: Client, conversation_id: str) -> dict[str, Any]:
    conversation = (
        await tenant.conversations.GetConversation(cs.GetConversationRequest(conversation_id=conversation_id))
    ).conversation
    history = await tenant.conversations.GetConversationHistory(
        cs.GetConversationHistoryRequest(conversation_id=conversation_id, page_size=500)
    )
    messages = await tenant.messages.ListMessages(
        ms.ListMessagesRequest(conversation_id=conversation_id, page_size=500)
    )
    return {"conversation": conversation, "history": list(history.entries), "messages": list(messages.messages)}


async def test_a_restored_conversation_reads_back_as_it_was_archived(
    server: server_mod.Server, clients: Clients, tenant: Client, settings: Settings, database_url: str
) -> None:
    conversation_id = await a_full_conversation(tenant)
    kept = await a_full_conversation(tenant)
    await set_retention(clients, tenant, 30)
    with lf.admin(database_url) as conn:  # closed 40 days ago, as if time had passed
        conn.execute(
            "UPDATE conversations SET closed_at = closed_at - interval '40 days' WHERE id = %s", (conversation_id,)
        )
    before = await read_all(tenant, conversation_id)
    assert len(before["messages"]) == 2 and len(before["history"]) >= 5

    job = RetentionJob(settings, server.app.db)
    async with job.started():
        summary = await job.run_once(uuid.UUID(tenant.tenant_id))
    assert summary.ok and summary.tenants[0].conversations == 1
    await expect(
        tenant.conversations.GetConversation(cs.GetConversationRequest(conversation_id=conversation_id)),
        grpc.StatusCode.NOT_FOUND,
    )
    assert (await read_all(tenant, kept))["conversation"].id == kept

    env = lf.cli_env(database_url, settings.archive_url)
    args = ("archive", "restore", "--tenant", tenant.tenant_id, "--conversation", conversation_id)
    code, out = await lf.run_cli(env, *args)
    assert code == 0, out
    assert "messages 2" in out
    assert await read_all(tenant, conversation_id) == before

    code, out = await lf.run_cli(env, "archive", "restore", "--tenant", tenant.tenant_id, "--conversation", kept)
    assert code == 4 and "CONVERSATION_LIVE" in out, out  # never archived
    code, out = await lf.run_cli(
        env, "archive", "restore", "--tenant", tenant.tenant_id, "--conversation", str(uuid.uuid4())
    )
    assert code == 2 and "not found" in out, out


def restore_state(conn: Any, tenant_id: uuid.UUID, archive: Path) -> dict[str, Any]:
    """Everything a restore could change: the tenant's live rows, the archive's bookkeeping, the archive's files."""
    tables = [*TABLES, "archive_batches", "archive_objects", "archived_conversations"]
    state: dict[str, Any] = {
        table: conn.execute(
            f"SELECT to_jsonb(t)::text AS row FROM {table} t WHERE tenant_id = %s ORDER BY row", (tenant_id,)
        ).fetchall()
        for table in tables
    }
    state["files"] = {str(path): hashlib.sha256(path.read_bytes()).hexdigest() for path in archive.rglob("*.parquet")}
    return state


async def test_a_restore_that_would_clash_with_live_rows_is_refused_and_changes_nothing(
    database_url: str, settings: Settings
) -> None:
    with lf.admin(database_url) as conn:
        tenant = lf.insert_tenant(conn, closed_retention_days=30)
        lf.seed_closed(conn, tenant, 3, closed_days_ago=60, tag="old")
        twice, live_id, clashing = sorted(lf.live_ids(conn, tenant, "old"))
        clashing_wamid = conn.execute(
            "SELECT whatsapp_message_id FROM messages WHERE conversation_id = %s LIMIT 1", (clashing,)
        ).fetchone()
    env = lf.cli_env(database_url, settings.archive_url)
    code, out = await lf.run_cli(env, "retention", "run", "--tenant", str(tenant))
    assert code == 0, out

    def restore(conversation_id: uuid.UUID) -> Any:
        args = ("archive", "restore", "--tenant", str(tenant), "--conversation", str(conversation_id))
        return lf.run_cli(env, *args)

    code, out = await restore(twice)
    assert code == 0, out
    with lf.admin(database_url) as conn:
        # as a database backup put back by hand might: one archived conversation's id, one of its message ids, live
        conn.execute(
            "INSERT INTO conversations (tenant_id, id, whatsapp_conversation_id, state, closed_at)"
            " VALUES (%s, %s, 'by-hand', 'closed', now())",
            (tenant, live_id),
        )
        conn.execute(
            "INSERT INTO messages (tenant_id, id, conversation_id, whatsapp_message_id, direction, status)"
            " VALUES (%s, gen_random_uuid(), %s, %s, 'inbound', 'delivered')",
            (tenant, live_id, clashing_wamid[0] if clashing_wamid else None),
        )
        before = restore_state(conn, tenant, Path(settings.archive_url))
    assert len(before["files"]) == len(TABLES)

    for conversation_id, reason in (
        (twice, "CONVERSATION_LIVE"),
        (live_id, "CONVERSATION_LIVE"),
        (clashing, "RESTORE_CONFLICT"),
    ):
        code, out = await restore(conversation_id)
        assert code == 4 and reason in out and "nothing restored" in out, out
        with lf.admin(database_url) as conn:
            assert restore_state(conn, tenant, Path(settings.archive_url)) == before


async def test_retention_periods_are_bounded_by_one_day_and_100_years(clients: Clients, tenant: Client) -> None:
    admin = clients.admin()

    def update(tenant_id: str, field: str, seconds: int) -> Any:
        policy = tenant_pb2.RetentionPolicy(tenant_id=tenant_id)
        getattr(policy, field).CopyFrom(duration_pb2.Duration(seconds=seconds))
        mask = field_mask_pb2.FieldMask(paths=[field])
        return admin.tenants.UpdateRetentionPolicy(
            ts.UpdateRetentionPolicyRequest(retention_policy=policy, update_mask=mask)
        )

    day, century = 86400, 36525 * 86400
    for field in ("closed_conversation_retention", "archive_retention"):
        await expect(
            update(tenant.tenant_id, field, day - 1), grpc.StatusCode.INVALID_ARGUMENT, f"retention_policy.{field}"
        )
        await expect(
            update(tenant.tenant_id, field, century + 1), grpc.StatusCode.INVALID_ARGUMENT, f"retention_policy.{field}"
        )
        assert getattr((await update(tenant.tenant_id, field, day)).retention_policy, field).seconds == day
        assert getattr((await update(tenant.tenant_id, field, century)).retention_policy, field).seconds == century
    await expect(update(str(uuid.uuid4()), "archive_retention", day), grpc.StatusCode.NOT_FOUND)


@pytest.mark.parametrize("dry_run", [True, False])
async def test_the_cli_refuses_an_unknown_tenant(database_url: str, settings: Settings, dry_run: bool) -> None:
    env = lf.cli_env(database_url, settings.archive_url)
    unknown = str(uuid.uuid4())
    code, out = await lf.run_cli(env, "retention", "run", "--tenant", unknown, *(["--dry-run"] if dry_run else []))
    assert code == 2 and f"no tenant {unknown}" in out, out
    with lf.admin(database_url) as conn:
        assert lf.count_rows(conn, "archive_batches", uuid.UUID(unknown)) == 0


async def test_the_cli_refuses_a_tenant_id_that_is_no_uuid(database_url: str, settings: Settings) -> None:
    env = lf.cli_env(database_url, settings.archive_url)
    for command in (("retention", "run"), ("archive", "restore", "--conversation", str(uuid.uuid4()))):
        code, out = await lf.run_cli(env, *command, "--tenant", "acme")
        assert code == 2 and "--tenant: invalid UUID value: 'acme'" in out, out


async def test_the_leader_runs_the_job_on_its_interval(settings: Settings, database_url: str) -> None:
    quick = dataclasses.replace(settings, retention_interval_seconds=0.5, retention_pause_ratio=0)
    started = await server_mod.start(App.build(quick), quick.listen)
    try:
        with lf.admin(database_url) as conn:
            tenant = lf.insert_tenant(conn, closed_retention_days=30)
            lf.seed_closed(conn, tenant, 30, closed_days_ago=60, tag="old")
        for _ in range(100):
            with lf.admin(database_url) as conn:
                if not lf.live_ids(conn, tenant, "old"):
                    break
            await asyncio.sleep(0.1)
        with lf.admin(database_url) as conn:
            assert lf.live_ids(conn, tenant, "old") == set()
            assert lf.count_rows(conn, "archived_conversations", tenant) == 30
    finally:
        await started.stop(grace=0.5)
