"""Every write invalidates, across servers: two servers on one database and one Redis, each with its own cache and
pub/sub (as two processes), and once a real `statemgr serve` process. A reader server B caches an answer (its
second read is a cache hit), a writer server A changes it, and B then answers the new value.

"Then" is bounded, not instant: B drops its in-process copy when A's invalidation reaches it over pub/sub (well
under a millisecond here; docs/caching.md gives the worst case), so the reads after a write poll for up to a
second.
"""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from statemgr.cache import Kind
from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_pb2
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import message_pb2 as mpb
from tests.integration import cache_fixtures, cache_paths
from tests.integration.cache_paths import Cluster, Node, eventually, read_twice_cached
from tests.integration.conftest import ADMIN_KEY, Client, Clients
from tests.integration.processes import ServeProcess, free_port_run
from tests.integration.test_conversations import ACTIVE, CLOSED, WAITING, create, move, update
from tests.integration.test_customers import inbound, new_wa_id, upsert
from tests.integration.test_integration_resolve import outbound
from tests.integration.test_messages import record

redis_url = cache_fixtures.redis_url
forget_tenants = cache_paths.forget_tenants
cached_settings = cache_paths.cached_settings
cluster = cache_paths.cluster

NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


class Pair:
    """Writer A and reader B, each a client of its own server, acting for one tenant."""

    def __init__(self, a: Node, b: Node, writer: Client) -> None:
        self.a, self.b = a, b
        self.writer, self.reader = writer, b.client(writer)

    def get(self, conversation_id: str) -> Callable[[], Awaitable[cpb.Conversation]]:
        request = cs.GetConversationRequest(conversation_id=conversation_id)
        return lambda: _conversation(self.reader.conversations.GetConversation(request))

    def by_whatsapp(self, whatsapp_conversation_id: str) -> Callable[[], Awaitable[cpb.Conversation]]:
        request = cs.LookupConversationRequest(whatsapp_conversation_id=whatsapp_conversation_id)
        return lambda: _conversation(self.reader.conversations.LookupConversation(request))

    def by_genesys(self, genesys_conversation_id: str) -> Callable[[], Awaitable[cpb.Conversation]]:
        request = cs.LookupConversationRequest(genesys_conversation_id=genesys_conversation_id)
        return lambda: _conversation(self.reader.conversations.LookupConversation(request))

    def customer(self, **key: str) -> Callable[[], Awaitable[customer_pb2.Customer]]:
        """GetCustomer (customer_id=...) or LookupCustomer (whatsapp_id=... or phone_number=...)."""
        customers = self.reader.customers
        if "customer_id" in key:
            return lambda: _customer(customers.GetCustomer(cus.GetCustomerRequest(**key)))
        return lambda: _customer(customers.LookupCustomer(cus.LookupCustomerRequest(**key)))

    def route(self, genesys_conversation_id: str) -> Callable[[], Awaitable[tuple[str, str, str]]]:
        """ResolveOutbound through B (a new message each time): (conversation id, WhatsApp id, phone number)."""

        async def call() -> tuple[str, str, str]:
            reply = await outbound(self.reader, genesys_conversation_id, content="via B")
            return reply.conversation.id, reply.whatsapp_id, reply.phone_number

        return call


async def _conversation(call: Awaitable[Any]) -> cpb.Conversation:
    return (await call).conversation  # type: ignore[no-any-return]


async def _customer(call: Awaitable[Any]) -> customer_pb2.Customer:
    return (await call).customer  # type: ignore[no-any-return]


@pytest.fixture
async def pair(cluster: Cluster) -> Pair:
    a, b = await cluster.start(), await cluster.start()
    writer = await a.clients.new_tenant("Two servers", region="GB")
    return Pair(a, b, writer)


def _is(expected: Any) -> Callable[[Any], bool]:
    return lambda found: found == expected


# --- conversations ---


async def test_create_replaces_cached_not_found_answers(pair: Pair) -> None:
    wa, genesys_id = "wa-" + uuid.uuid4().hex, "gen-" + uuid.uuid4().hex
    assert await read_twice_cached(pair.b, Kind.CONVERSATION, pair.by_whatsapp(wa)) == NOT_FOUND
    assert await read_twice_cached(pair.b, Kind.CONVERSATION, pair.by_genesys(genesys_id)) == NOT_FOUND
    assert await read_twice_cached(pair.b, Kind.MAPPING, pair.route(genesys_id)) == NOT_FOUND

    made = await create(pair.writer, wa, genesys_conversation_id=genesys_id)

    await eventually(pair.by_whatsapp(wa), _is(made))
    await eventually(pair.by_genesys(genesys_id), _is(made))
    assert (await eventually(pair.route(genesys_id), lambda r: r != NOT_FOUND))[:2] == (made.id, wa)


async def test_update_of_the_genesys_mapping(pair: Pair) -> None:
    made = await create(pair.writer, genesys_conversation_id="gen-old-" + uuid.uuid4().hex)
    new_id = "gen-new-" + uuid.uuid4().hex
    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.get(made.id))
    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.by_genesys(made.genesys_conversation_id))
    assert await read_twice_cached(pair.b, Kind.CONVERSATION, pair.by_genesys(new_id)) == NOT_FOUND

    remapped = cpb.Conversation(id=made.id, genesys_conversation_id=new_id)
    changed = await update(pair.writer, remapped, "genesys_conversation_id")

    await eventually(pair.get(made.id), _is(changed))
    await eventually(pair.by_genesys(new_id), _is(changed))
    await eventually(pair.by_genesys(made.genesys_conversation_id), _is(changed))  # the superseded id too
    assert list(changed.previous_genesys_conversation_ids) == [made.genesys_conversation_id]


async def test_transition_and_close(pair: Pair) -> None:
    genesys_id = "gen-" + uuid.uuid4().hex
    made = await create(pair.writer, genesys_conversation_id=genesys_id)
    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.get(made.id))
    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.by_whatsapp(made.whatsapp_conversation_id))

    waiting = await move(pair.writer, made.id, WAITING, "customer away")
    assert waiting.state == WAITING
    await eventually(pair.get(made.id), _is(waiting))
    await eventually(pair.by_whatsapp(made.whatsapp_conversation_id), _is(waiting))

    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.by_genesys(genesys_id))
    await read_twice_cached(pair.b, Kind.MAPPING, pair.route(genesys_id))
    closed = (
        await pair.writer.conversations.CloseConversation(cs.CloseConversationRequest(conversation_id=made.id))
    ).conversation
    assert closed.state == CLOSED
    await eventually(pair.get(made.id), _is(closed))
    await eventually(pair.by_whatsapp(made.whatsapp_conversation_id), _is(closed))
    await eventually(pair.by_genesys(genesys_id), _is(closed))
    await eventually(pair.route(genesys_id), _is(FAILED_PRECONDITION))  # a closed conversation takes no message


async def test_transfer(pair: Pair) -> None:
    made = await create(pair.writer)
    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.get(made.id))
    agent = str(uuid.uuid4())

    request = cs.TransferConversationRequest(conversation_id=made.id, agent_id=agent, reason="shift change")
    moved = (await pair.writer.conversations.TransferConversation(request)).conversation

    assert moved.agent_id == agent and moved.state == ACTIVE
    await eventually(pair.get(made.id), _is(moved))


# --- customers ---


async def test_upsert_customer_creates_then_changes_the_phone_number(pair: Pair) -> None:
    wa, first_phone, second_phone = new_wa_id(), "+442079460958", "+442079460959"
    by_wa, by_first, by_second = (
        pair.customer(whatsapp_id=wa),
        pair.customer(phone_number=first_phone),
        pair.customer(phone_number="020 7946 0959"),  # national: the same key as second_phone once normalised
    )
    for read in (by_wa, by_first, by_second):
        assert await read_twice_cached(pair.b, Kind.CUSTOMER, read) == NOT_FOUND

    created = (await upsert(pair.writer, wa, phone_number=first_phone, name="Ann")).customer
    await eventually(by_wa, _is(created))
    await eventually(by_first, _is(created))
    await read_twice_cached(pair.b, Kind.CUSTOMER, pair.customer(customer_id=created.id))
    await read_twice_cached(pair.b, Kind.CUSTOMER, by_first)

    moved = (await upsert(pair.writer, wa, phone_number=second_phone)).customer

    assert moved.phone_number == second_phone and moved.name == "Ann"
    await eventually(by_first, _is(NOT_FOUND))  # the old number's key went too
    await eventually(by_second, _is(moved))
    await eventually(by_wa, _is(moved))
    await eventually(pair.customer(customer_id=created.id), _is(moved))


async def test_update_customer(pair: Pair) -> None:
    wa = new_wa_id()
    created = (await upsert(pair.writer, wa, phone_number="+14155550100", name="Bob")).customer
    reads = [pair.customer(customer_id=created.id), pair.customer(whatsapp_id=wa)]
    reads.append(pair.customer(phone_number="+14155550100"))
    for read in reads:
        await read_twice_cached(pair.b, Kind.CUSTOMER, read)

    changed = customer_pb2.Customer(id=created.id, name="Robert", phone_number="+14155550199")
    mask = _mask("name", "phone_number")
    updated = (
        await pair.writer.customers.UpdateCustomer(cus.UpdateCustomerRequest(customer=changed, update_mask=mask))
    ).customer

    assert (updated.name, updated.phone_number) == ("Robert", "+14155550199")
    await eventually(reads[0], _is(updated))
    await eventually(reads[1], _is(updated))
    await eventually(reads[2], _is(NOT_FOUND))
    await eventually(pair.customer(phone_number="+14155550199"), _is(updated))


# --- messages and the integration resolutions ---


async def test_record_message_moves_the_conversation(pair: Pair) -> None:
    made = await create(pair.writer)
    cached = await read_twice_cached(pair.b, Kind.CONVERSATION, pair.get(made.id))
    assert not cached.reply_window_open

    await record(pair.writer, made.id)  # inbound: activity, and the reply window opens

    opened = await eventually(pair.get(made.id), lambda c: c.etag != made.etag)
    assert opened.reply_window_open and opened.last_activity_time.ToDatetime() >= made.last_activity_time.ToDatetime()
    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.get(made.id))

    await record(pair.writer, made.id, direction=mpb.MESSAGE_DIRECTION_OUTBOUND, genesys_message_id="gm-1")

    after = await eventually(pair.get(made.id), lambda c: c.etag != opened.etag)
    assert after.reply_window_expire_time == opened.reply_window_expire_time  # outbound: activity only


async def test_resolve_inbound_creates_touches_and_claims(pair: Pair) -> None:
    wa = new_wa_id()
    customer_by_wa, conversation_by_wa = pair.customer(whatsapp_id=wa), pair.by_whatsapp(wa)
    assert await read_twice_cached(pair.b, Kind.CUSTOMER, customer_by_wa) == NOT_FOUND
    assert await read_twice_cached(pair.b, Kind.CONVERSATION, conversation_by_wa) == NOT_FOUND

    first = await inbound(pair.writer, wa, customer_name="Cleo")
    await eventually(customer_by_wa, _is(first.context.customer))
    await eventually(conversation_by_wa, _is(first.conversation))
    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.get(first.conversation.id))
    await read_twice_cached(pair.b, Kind.CUSTOMER, pair.customer(customer_id=first.context.customer.id))

    second = await inbound(pair.writer, wa, customer_name="Cleo B.")  # renames her; the conversation moves
    await eventually(pair.get(first.conversation.id), _is(second.conversation))
    await eventually(pair.customer(customer_id=first.context.customer.id), _is(second.context.customer))
    assert second.conversation.etag != first.conversation.etag and second.context.customer.name == "Cleo B."


async def test_resolve_inbound_claiming_a_conversation_changes_its_route(pair: Pair) -> None:
    wa, genesys_id = new_wa_id(), "gen-" + uuid.uuid4().hex
    opened = await create(pair.writer, wa, genesys_conversation_id=genesys_id)  # by the agent side: no customer yet
    assert await read_twice_cached(pair.b, Kind.MAPPING, pair.route(genesys_id)) == (opened.id, wa, "")
    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.get(opened.id))

    claimed = await inbound(pair.writer, wa, phone_number="+442079460958")

    assert claimed.conversation.id == opened.id and claimed.conversation.customer_id
    await eventually(pair.get(opened.id), _is(claimed.conversation))
    await eventually(pair.route(genesys_id), _is((opened.id, wa, "+442079460958")))


async def test_resolve_outbound_moves_the_conversation_and_keeps_the_route(pair: Pair) -> None:
    wa, genesys_id = new_wa_id(), "gen-" + uuid.uuid4().hex
    first = await inbound(pair.writer, wa)
    mapping = cpb.Conversation(id=first.conversation.id, genesys_conversation_id=genesys_id)
    mapped = await update(pair.writer, mapping, "genesys_conversation_id")
    await read_twice_cached(pair.b, Kind.CONVERSATION, pair.get(mapped.id))
    await outbound(pair.writer, genesys_id, content="loading the route in A")
    routes = pair.a.counts(Kind.MAPPING)

    sent = await outbound(pair.writer, genesys_id, content="Hello from the agent")

    assert sent.message_created and pair.a.counts(Kind.MAPPING) == (routes[0], routes[1] + 1)  # the route stayed
    await eventually(pair.get(mapped.id), _is(sent.conversation))


# --- a real second process ---


class Served:
    """`statemgr serve` with the cache on, and the port of its metrics."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.metrics_port = free_port_run(2)  # the worker's metrics, and the background process's on + 1
        self.process = ServeProcess(
            {
                "STATEMGR_DATABASE_URL": database_url,
                "STATEMGR_REDIS_URL": redis_url,
                "STATEMGR_ADMIN_KEY": ADMIN_KEY,
                "STATEMGR_AMQP_URL": "",
                "STATEMGR_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
                "STATEMGR_CACHE_PUBSUB_PING_SECONDS": "0.2",
                "STATEMGR_LOG_LEVEL": "warning",
            }
        )

    async def hits(self) -> float:
        """Its cache hits (both tiers, every kind), from its metrics endpoint."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
        lines = text.splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("statemgr_cache_hits_total{"))


@pytest.fixture
async def served(database_url: str, redis_url: str, forget_tenants: None) -> AsyncIterator[Served]:
    started = Served(database_url, redis_url)
    await started.process.start()
    yield started
    started.process.kill()


async def test_a_statemgr_serve_process_hears_the_writes_of_another(cluster: Cluster, served: Served) -> None:
    a = await cluster.start()
    writer = await a.clients.new_tenant("Two processes", region="GB")
    reader_clients = Clients(served.process.port)
    reader = reader_clients.with_key(writer.api_key, writer.tenant_id)
    made = await create(writer)
    customer = (await upsert(writer, new_wa_id(), phone_number="+442079460958")).customer

    async def get() -> cpb.Conversation:
        return await _conversation(
            reader.conversations.GetConversation(cs.GetConversationRequest(conversation_id=made.id))
        )

    async def by_phone() -> customer_pb2.Customer:
        return await _customer(reader.customers.LookupCustomer(cus.LookupCustomerRequest(phone_number="020 7946 0958")))

    try:
        for read, expected in ((get, made), (by_phone, customer)):
            hits = await served.hits()
            assert await read() == expected and await read() == expected
            assert await served.hits() >= hits + 1, "the serve process answered from its cache"

        moved = await move(writer, made.id, WAITING)
        changed = customer_pb2.Customer(id=customer.id, phone_number="+442079460959")
        await writer.customers.UpdateCustomer(
            cus.UpdateCustomerRequest(customer=changed, update_mask=_mask("phone_number"))
        )

        await eventually(get, _is(moved))
        await eventually(by_phone, _is(NOT_FOUND))
    finally:
        await reader_clients.close()


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=paths)
