"""EraseCustomer when the archive store fails: down for the whole call, or refusing one object's write after others
were written. The call answers UNAVAILABLE, a retry once the store is back finishes the same erasure (same audit
id), and no archived copy of the customer's data is left, nor an object its manifest no longer describes."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from statemgr import server as server_mod
from statemgr.config import Settings
from statemgr.jobs.archive_store import ArchiveStore
from statemgr.jobs.restore import restore_conversation
from statemgr.jobs.retention import RetentionJob
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import message_pb2 as pb
from statemgr.v1 import message_service_pb2 as ms
from tests.integration import lifecycle_fixtures as lf
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.s3proxy import RefusingProxy
from tests.integration.test_customers import inbound
from tests.integration.test_lifecycle_erasure import Person, archive_hits, database_hits, new_person
from tests.integration.test_lifecycle_restore import set_retention


@pytest.fixture
def store_proxy(moto: lf.MotoServer) -> Iterator[RefusingProxy]:
    proxy = RefusingProxy(moto.endpoint).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def settings(settings: Settings, moto: lf.MotoServer, store_proxy: RefusingProxy) -> Iterator[Settings]:
    """The server's archive store is moto's S3 server behind the proxy."""
    with lf.aws_environment():
        yield dataclasses.replace(
            settings,
            archive_url=f"s3://{moto.bucket()}/archive",
            archive_s3_endpoint=store_proxy.endpoint,
            archive_timeout_seconds=3.0,
            retention_pause_ratio=0,
        )


@dataclasses.dataclass
class Archived:
    customer_id: str
    conversation_id: str
    other_conversation_id: str  # another customer's, archived in the same batch
    needles: list[str]


async def closed_conversation(tenant: Client, person: Person, parked_wamid: str, database_url: str) -> tuple[str, str]:
    """The person's conversation with an inbound and an outbound message, a status report parked under the outbound
    message's WhatsApp id (it arrived before the message was recorded), closed; (customer id, conversation id)."""
    first = await inbound(tenant, person.wa_id, content=person.texts[0], customer_name=person.name)
    conversation_id = first.conversation.id
    reply = pb.Message(
        conversation_id=conversation_id,
        direction=pb.MESSAGE_DIRECTION_OUTBOUND,
        whatsapp_message_id=parked_wamid,
        content=person.texts[2],
    )
    await tenant.messages.RecordMessage(ms.RecordMessageRequest(message=reply))
    with lf.admin(database_url) as conn:
        conn.execute(
            "INSERT INTO parked_statuses (tenant_id, whatsapp_message_id, status, status_time, expires_at)"
            " VALUES (%s, %s, 'read', now(), now() + interval '1 day')",
            (tenant.tenant_id, parked_wamid),
        )
    await tenant.conversations.CloseConversation(
        cs.CloseConversationRequest(conversation_id=conversation_id, reason="done")
    )
    return first.context.customer.id, conversation_id


@pytest.fixture
async def archived(
    server: server_mod.Server, clients: Clients, tenant: Client, settings: Settings, database_url: str
) -> Archived:
    """A customer whose conversation is archived (with its parked report) in one batch with another customer's."""
    person, other = new_person(), new_person()
    wamid = "wamid." + uuid.uuid4().hex
    customer_id, conversation_id = await closed_conversation(tenant, person, wamid, database_url)
    _, other_conversation_id = await closed_conversation(tenant, other, "wamid." + uuid.uuid4().hex, database_url)
    await set_retention(clients, tenant, 30)
    with lf.admin(database_url) as conn:
        conn.execute("UPDATE conversations SET closed_at = closed_at - interval '40 days'")
    job = RetentionJob(settings, server.app.db)
    async with job.started():
        summary = await job.run_once(uuid.UUID(tenant.tenant_id))
    assert summary.ok and summary.tenants[0].batches == 1 and summary.tenants[0].conversations == 2
    needles = [*person.needles, wamid]
    found = {hit.rsplit(": ", 1)[1] for hit in await archive_hits(ArchiveStore.from_settings(settings), needles)}
    assert {person.wa_id, person.texts[0], person.texts[2], wamid} <= found  # the number, texts, the parked report
    return Archived(customer_id, conversation_id, other_conversation_id, needles)


def audits(database_url: str, customer_id: str) -> list[tuple[Any, ...]]:
    with lf.admin(database_url) as conn:
        return conn.execute(
            "SELECT id::text, completed_at IS NOT NULL FROM erasure_audits WHERE customer_id = %s", (customer_id,)
        ).fetchall()


async def assert_the_archive_is_whole_and_clean(
    server: server_mod.Server, settings: Settings, tenant: Client, archived: Archived
) -> None:
    """No copy of the customer's data in any object, and every object still matches its manifest: both archived
    conversations restore (a restore checks each object's SHA-256 against the manifest first)."""
    archive = ArchiveStore.from_settings(settings)
    assert await archive_hits(archive, archived.needles) == []
    tenant_id = uuid.UUID(tenant.tenant_id)
    for conversation_id in (archived.other_conversation_id, archived.conversation_id):
        restored = await restore_conversation(
            server.app.db, archive, server.app.cache, tenant_id, uuid.UUID(conversation_id)
        )
        assert restored.rows["messages"] == 2


async def test_store_down_answers_unavailable_and_a_retry_once_it_is_back_finishes(
    server: server_mod.Server,
    tenant: Client,
    settings: Settings,
    database_url: str,
    store_proxy: RefusingProxy,
    archived: Archived,
) -> None:
    erase = cus.EraseCustomerRequest(customer_id=archived.customer_id)

    store_proxy.stop()
    for _ in range(2):  # a retry while it is still down answers the same, and erases nothing twice
        failed = await expect(tenant.customers.EraseCustomer(erase), grpc.StatusCode.UNAVAILABLE)
        assert "archive store is unreachable" in (failed.details() or "")
    [(audit_id, completed)] = audits(database_url, archived.customer_id)
    assert not completed
    assert database_hits(database_url, archived.needles) == []  # the live data is erased at once

    store_proxy.start()
    erased = await tenant.customers.EraseCustomer(erase)
    again = await tenant.customers.EraseCustomer(erase)
    assert erased.audit_id == again.audit_id == audit_id
    assert audits(database_url, archived.customer_id) == [(audit_id, True)]
    await assert_the_archive_is_whole_and_clean(server, settings, tenant, archived)


@pytest.mark.parametrize("refused_table", ["parked_statuses", "messages"])
async def test_store_refusing_one_write_part_way_leaves_a_retry_all_it_needs(
    server: server_mod.Server,
    tenant: Client,
    settings: Settings,
    database_url: str,
    store_proxy: RefusingProxy,
    archived: Archived,
    refused_table: str,
) -> None:
    erase = cus.EraseCustomerRequest(customer_id=archived.customer_id)

    store_proxy.refuse = lambda method, path: method == "PUT" and f"/{refused_table}/" in path
    await expect(tenant.customers.EraseCustomer(erase), grpc.StatusCode.UNAVAILABLE)
    assert store_proxy.refused, "the store refused nothing: the fault was never hit"
    [(audit_id, completed)] = audits(database_url, archived.customer_id)
    assert not completed

    store_proxy.refuse = None
    assert (await tenant.customers.EraseCustomer(erase)).audit_id == audit_id
    assert audits(database_url, archived.customer_id) == [(audit_id, True)]
    await assert_the_archive_is_whole_and_clean(server, settings, tenant, archived)
