"""EraseCustomer end to end: live tables, event log, both cache tiers, archives, events out, audit, idempotency."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from google.protobuf import field_mask_pb2

from statemgr import server as server_mod
from statemgr.cache import Cache, keys
from statemgr.cache.options import CacheOptions
from statemgr.config import Settings
from statemgr.jobs import parquet
from statemgr.jobs.archive_store import ArchiveStore
from statemgr.jobs.retention import RetentionJob
from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_pb2, event_pb2
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import message_pb2 as pb
from statemgr.v1 import message_service_pb2 as ms
from tests.integration import lifecycle_fixtures as lf
from tests.integration import services
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.test_customers import inbound, new_wa_id, struct
from tests.integration.test_events_helpers import AmqpQueue, Collector, delete_exchange, request
from tests.integration.test_lifecycle_restore import set_retention

GENERATION_TTL = 2


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    url = services.require(services.AMQP_URL, 5672, "RabbitMQ")
    redis_url = services.require(services.REDIS_URL, 6379, "Redis")
    exchange = f"statemgr.test.{uuid.uuid4().hex[:10]}"
    yield dataclasses.replace(
        settings,
        archive_url=str(tmp_path / "archive"),
        redis_url=redis_url,
        amqp_url=url,
        amqp_exchange=exchange,
        event_poll_seconds=0.5,
        event_heartbeat_seconds=0.5,
        event_leader_poll_seconds=0.5,
        cache_generation_ttl_seconds=GENERATION_TTL,
        cache_pubsub_ping_seconds=0.2,
    )
    delete_exchange(url, exchange)


@pytest.fixture
async def amqp_queue(settings: Settings) -> AsyncIterator[AmqpQueue]:
    queue = AmqpQueue(services.AMQP_URL, settings.amqp_exchange, binding="*.EVENT_TYPE_CUSTOMER_ERASED")
    await asyncio.to_thread(queue.declare)
    yield queue
    await asyncio.to_thread(queue.delete)


@pytest.fixture
async def other_process_cache(settings: Settings) -> AsyncIterator[Cache]:
    """A cache as another server process has it: its own in-process tier and its own pub/sub subscription."""
    cache = Cache(CacheOptions.from_settings(settings))
    await cache.start()
    for _ in range(100):
        if cache.local_live:
            break
        await asyncio.sleep(0.05)
    yield cache
    await cache.stop()


@dataclasses.dataclass
class Person:
    wa_id: str
    name: str
    texts: list[str]

    @property
    def needles(self) -> list[str]:
        """What must be found nowhere: the number (as WhatsApp id and in E.164), the name, the texts."""
        return [self.wa_id, "+" + self.wa_id, self.name, *self.texts]


def new_person() -> Person:
    tag = uuid.uuid4().hex[:8]
    return Person(
        new_wa_id(),
        f"Zoë Erasmus {tag}",
        [f"my card ends {tag}", f"https://media.example/{tag}.jpg", f"reply to {tag}", f"zoe.{tag}@example.com"],
    )


async def archived_conversation(
    tenant: Client, person: Person, clients: Clients, settings: Settings, db_url: str, app: Any
) -> str:
    first = await inbound(tenant, person.wa_id, content=person.texts[0], customer_name=person.name)
    conversation_id = first.conversation.id
    await tenant.conversations.CloseConversation(
        cs.CloseConversationRequest(conversation_id=conversation_id, reason="done")
    )
    await set_retention(clients, tenant, 30)
    with lf.admin(db_url) as conn:
        conn.execute(
            "UPDATE conversations SET closed_at = closed_at - interval '40 days' WHERE id = %s", (conversation_id,)
        )
    job = RetentionJob(settings, app.db)
    async with job.started():
        assert (await job.run_once(uuid.UUID(tenant.tenant_id))).tenants[0].conversations == 1
    return conversation_id


async def live_conversation(tenant: Client, person: Person) -> tuple[str, str]:
    live = await inbound(tenant, person.wa_id, content="hello again", media_urls=[person.texts[1]])
    customer_id, conversation_id = live.context.customer.id, live.conversation.id
    reply = pb.Message(
        conversation_id=conversation_id,
        direction=pb.MESSAGE_DIRECTION_OUTBOUND,
        whatsapp_message_id="wamid." + uuid.uuid4().hex,
        content=person.texts[2],
    )
    await tenant.messages.RecordMessage(ms.RecordMessageRequest(message=reply))
    mask = field_mask_pb2.FieldMask(paths=["metadata"])
    await tenant.customers.UpdateCustomer(
        cus.UpdateCustomerRequest(
            customer=customer_pb2.Customer(id=customer_id, metadata=struct(email=person.texts[3])), update_mask=mask
        )
    )
    await tenant.conversations.UpdateConversation(
        cs.UpdateConversationRequest(
            conversation=cpb.Conversation(id=conversation_id, metadata=struct(note=person.name)), update_mask=mask
        )
    )
    return customer_id, conversation_id


async def warm_the_caches(tenant: Client, person: Person, customer_id: str, conversation_id: str) -> None:
    await tenant.customers.GetCustomer(cus.GetCustomerRequest(customer_id=customer_id))
    await tenant.customers.LookupCustomer(cus.LookupCustomerRequest(whatsapp_id=person.wa_id))
    await tenant.customers.LookupCustomer(cus.LookupCustomerRequest(phone_number="+" + person.wa_id))
    await tenant.conversations.GetConversation(cs.GetConversationRequest(conversation_id=conversation_id))
    await tenant.conversations.LookupConversation(cs.LookupConversationRequest(whatsapp_conversation_id=person.wa_id))


def database_hits(db_url: str, needles: list[str]) -> list[str]:
    """Every text, text[] and jsonb column of every table, searched for each needle."""
    found = []
    with lf.admin(db_url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            "   AND (data_type IN ('text', 'jsonb', 'json', 'character varying') OR udt_name = '_text')"
        ).fetchall()
        for table, column in columns:
            for needle in needles:
                query = f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s'
                row = conn.execute(query, ("%" + needle.replace("%", r"\%") + "%",)).fetchone()
                if row and row[0]:
                    found.append(f"{table}.{column}: {needle}")
    return found


def redis_hits(redis_url: str, tenant_id: str, needles: list[str]) -> list[str]:
    found = []
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"sm:{{{tenant_id}}}:*", count=1000):
            value = client.get(key) if client.type(key) == b"string" else b""
            for needle in needles:
                if needle.encode() in key or needle.encode() in (value or b""):
                    found.append(f"{key!r}: {needle}")
    finally:
        client.close()
    return found


async def archive_hits(archive: ArchiveStore, needles: list[str]) -> list[str]:
    found = []
    for key in await archive.keys():
        data = await archive.get(key)
        text = str(lf.rows_of([parquet.read(data)]))
        for needle in needles:
            if needle in text or needle.encode() in data:
                found.append(f"{key}: {needle}")
    return found


async def test_erasure_reaches_every_copy_and_is_idempotent(
    server: server_mod.Server,
    clients: Clients,
    tenant: Client,
    settings: Settings,
    database_url: str,
    amqp_queue: AmqpQueue,
    other_process_cache: Cache,
) -> None:
    person = new_person()
    archived_id = await archived_conversation(tenant, person, clients, settings, database_url, server.app)
    customer_id, conversation_id = await live_conversation(tenant, person)
    await warm_the_caches(tenant, person, customer_id, conversation_id)
    tenant_uuid = uuid.UUID(tenant.tenant_id)
    other_key = keys.customer(tenant_uuid, uuid.UUID(customer_id))
    assert await other_process_cache.get_or_load(other_key, _returning(b"\x01cached " + person.name.encode()))
    assert database_hits(database_url, person.needles) and redis_hits(
        settings.redis_url, tenant.tenant_id, person.needles
    )
    archive = ArchiveStore.from_settings(settings)
    assert await archive_hits(archive, person.needles)  # the archived conversation holds the first text
    subscriber = await Collector(tenant, request(from_now=True, types=[event_pb2.EVENT_TYPE_CUSTOMER_ERASED])).started()

    erased = await tenant.customers.EraseCustomer(cus.EraseCustomerRequest(customer_id=customer_id))
    again = await tenant.customers.EraseCustomer(cus.EraseCustomerRequest(customer_id=customer_id))
    assert erased.audit_id and again.audit_id == erased.audit_id

    events = await subscriber.wait_for(1)
    await subscriber.stop()
    assert [(e.type, e.customer_id) for e in events] == [(event_pb2.EVENT_TYPE_CUSTOMER_ERASED, customer_id)]
    assert not await asyncio.to_thread(amqp_queue.drain, {events[0].id}, 20.0)
    assert amqp_queue.messages[0][1] == f"{tenant.tenant_id}.EVENT_TYPE_CUSTOMER_ERASED"
    assert person.name.encode() not in amqp_queue.messages[0][2]

    # the other process's in-process tier heard the invalidation: its next read loads afresh
    assert await other_process_cache.get_or_load(other_key, _returning(b"\x01fresh")) == b"\x01fresh"
    await asyncio.sleep(GENERATION_TTL + 0.5)  # invalidation markers name their keys; they expire after this
    assert database_hits(database_url, person.needles) == []
    assert redis_hits(settings.redis_url, tenant.tenant_id, person.needles) == []
    assert await archive_hits(archive, person.needles) == []

    with lf.admin(database_url) as conn:
        audit = conn.execute(
            "SELECT id::text, api_key_id IS NOT NULL, completed_at IS NOT NULL, counts FROM erasure_audits"
            " WHERE customer_id = %s",
            (customer_id,),
        ).fetchall()
        manifest_ok = conn.execute(
            "SELECT count(*) FROM archive_batches b JOIN archived_conversations a ON a.batch_id = b.id"
            " WHERE a.conversation_id = %s AND b.rewritten_at IS NOT NULL",
            (archived_id,),
        ).fetchone()
    assert len(audit) == 1 and audit[0][:3] == (erased.audit_id, True, True)
    counts = audit[0][3]
    assert counts["customers"] == 1 and counts["messages"] == 2 and counts["archive_objects"] >= 2
    assert manifest_ok == (1,)

    # the archive still verifies against its (updated) manifest: the erased conversation restores, anonymised
    env = lf.cli_env(database_url, settings.archive_url)
    code, out = await lf.run_cli(env, "archive", "restore", "--tenant", tenant.tenant_id, "--conversation", archived_id)
    assert code == 0, out

    # the same WhatsApp id starts a fresh customer
    fresh = await inbound(tenant, person.wa_id, content="new start", customer_name="Someone")
    assert fresh.customer_created and fresh.conversation_created and fresh.context.customer.id != customer_id


def _returning(value: bytes) -> Any:
    async def load() -> bytes:
        return value

    return load


async def test_erasure_bad_input(tenant: Client) -> None:
    await expect(
        tenant.customers.EraseCustomer(cus.EraseCustomerRequest(customer_id="nope")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "customer_id",
    )
    await expect(
        tenant.customers.EraseCustomer(cus.EraseCustomerRequest(customer_id=str(uuid.uuid4()))),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_a_writer_racing_the_erasure_never_gets_internal(tenant: Client, database_url: str) -> None:
    person = new_person()
    first = await inbound(tenant, person.wa_id, content=person.texts[0], customer_name=person.name)
    customer_id = first.context.customer.id

    async def writer(n: int) -> list[grpc.StatusCode]:
        codes = []
        for i in range(15):
            try:
                await inbound(tenant, person.wa_id, content=f"{person.texts[2]} {n}/{i}", customer_name=person.name)
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
        return codes

    async def erase() -> str:
        await asyncio.sleep(0.05)
        return (await tenant.customers.EraseCustomer(cus.EraseCustomerRequest(customer_id=customer_id))).audit_id

    *written, audit_id = await asyncio.gather(writer(1), writer(2), writer(3), erase())
    assert audit_id
    codes = [code for codes in written for code in codes]
    assert grpc.StatusCode.INTERNAL not in codes and grpc.StatusCode.UNKNOWN not in codes, codes
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.ABORTED}
    with lf.admin(database_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM messages m JOIN conversations c"
            " ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id"
            " WHERE c.customer_id = %s AND m.content <> ''",
            (customer_id,),
        ).fetchone()
        customer = conn.execute(
            "SELECT whatsapp_id, phone_number, name FROM customers WHERE id = %s", (customer_id,)
        ).fetchone()
    assert left == (0,), "a message of the erased customer kept its content"
    assert customer == (f"erased:{customer_id}", None, "")
