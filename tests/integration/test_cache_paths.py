"""The cached RPCs through the generated stubs, with Redis on: each read path is loaded once, then served from the
cache with the same answer; a stale ResolveOutbound route is replaced; 500 concurrent lookups of a cold key cost at
most two database reads; with Redis stalled every call still answers correctly in bounded time, and the cache
resumes by itself.

Writes invalidating across servers: test_cache_paths_writes.py. The warm-up: test_cache_paths_warm.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from statemgr.cache import Kind
from statemgr.cache.breaker import State
from statemgr.services.conversations import ConversationService
from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_service_pb2 as cus
from tests.integration import cache_fixtures, cache_paths
from tests.integration.cache_fixtures import proxied
from tests.integration.cache_paths import Cluster, Node, outcome
from tests.integration.conftest import Client
from tests.integration.tcpproxy import TcpProxy
from tests.integration.test_conversations import create, owner_query, update
from tests.integration.test_customers import inbound, new_wa_id, upsert
from tests.integration.test_integration_resolve import outbound

redis_url = cache_fixtures.redis_url
proxy = cache_fixtures.proxy
forget_tenants = cache_paths.forget_tenants
cached_settings = cache_paths.cached_settings
cluster = cache_paths.cluster

NOT_FOUND = grpc.StatusCode.NOT_FOUND


async def served_from_cache(node: Node, kind: Kind, call: Callable[[], Awaitable[Any]]) -> Any:
    """The first call loads from PostgreSQL (one load of `kind`), the second is a cache hit with the same answer."""
    loads, hits = node.counts(kind)
    first = await outcome(call())
    assert node.counts(kind) == (loads + 1, hits), "the first read should load from PostgreSQL"
    second = await outcome(call())
    assert node.counts(kind) == (loads + 1, hits + 1), "the second read should be a cache hit"
    assert second == first
    return second


async def _tenant(node: Node) -> Client:
    return await node.clients.new_tenant("Cached", region="GB")


async def test_conversation_reads_miss_then_hit(cluster: Cluster) -> None:
    node = await cluster.start()
    client = await _tenant(node)
    made = await create(client, genesys_conversation_id="gen-" + uuid.uuid4().hex)
    conversations = client.conversations

    by_id = await served_from_cache(
        node,
        Kind.CONVERSATION,
        lambda: conversations.GetConversation(cs.GetConversationRequest(conversation_id=made.id)),
    )
    by_wa = await served_from_cache(
        node,
        Kind.CONVERSATION,
        lambda: conversations.LookupConversation(
            cs.LookupConversationRequest(whatsapp_conversation_id=made.whatsapp_conversation_id)
        ),
    )
    by_genesys = await served_from_cache(
        node,
        Kind.CONVERSATION,
        lambda: conversations.LookupConversation(
            cs.LookupConversationRequest(genesys_conversation_id=made.genesys_conversation_id)
        ),
    )
    assert by_id.conversation == by_wa.conversation == by_genesys.conversation == made
    missing = await served_from_cache(
        node,
        Kind.CONVERSATION,
        lambda: conversations.LookupConversation(cs.LookupConversationRequest(whatsapp_conversation_id="nobody")),
    )
    assert missing == NOT_FOUND  # "not found" is cached too (briefly)


async def test_customer_reads_miss_then_hit(cluster: Cluster) -> None:
    node = await cluster.start()
    client = await _tenant(node)
    wa = new_wa_id()
    made = (await upsert(client, wa, phone_number="07400 123456", name="Ann")).customer
    customers = client.customers

    by_id = await served_from_cache(
        node, Kind.CUSTOMER, lambda: customers.GetCustomer(cus.GetCustomerRequest(customer_id=made.id))
    )
    by_wa = await served_from_cache(
        node, Kind.CUSTOMER, lambda: customers.LookupCustomer(cus.LookupCustomerRequest(whatsapp_id=wa))
    )
    by_phone = await served_from_cache(  # national: normalised with the tenant's region (GB) before the key is built
        node, Kind.CUSTOMER, lambda: customers.LookupCustomer(cus.LookupCustomerRequest(phone_number="07400 123456"))
    )
    assert by_id.customer == by_wa.customer == by_phone.customer == made
    loads, hits = node.counts(Kind.CUSTOMER)
    other_spelling = await customers.LookupCustomer(cus.LookupCustomerRequest(phone_number="+44 7400 123456"))
    assert other_spelling.customer == made and node.counts(Kind.CUSTOMER) == (loads, hits + 1)  # one E.164 key


async def test_resolve_outbound_route_miss_then_hit(cluster: Cluster) -> None:
    node = await cluster.start()
    client = await _tenant(node)
    wa, genesys_id = new_wa_id(), "gen-" + uuid.uuid4().hex
    first_in = await inbound(client, wa, customer_name="Ann")
    mapped = cpb.Conversation(id=first_in.conversation.id, genesys_conversation_id=genesys_id)
    await update(client, mapped, "genesys_conversation_id")
    routes_before = node.counts(Kind.MAPPING)

    first = await outbound(client, genesys_id, content="one")
    assert node.counts(Kind.MAPPING) == (routes_before[0] + 1, routes_before[1])  # the route loaded once
    second = await outbound(client, genesys_id, content="two")  # the first message did not evict the route
    assert node.counts(Kind.MAPPING) == (routes_before[0] + 1, routes_before[1] + 1)

    assert first.message_created and second.message_created and first.message.id != second.message.id
    for reply in (first, second):
        assert (reply.whatsapp_id, reply.phone_number) == (wa, "+" + wa)
        assert reply.conversation.id == first_in.conversation.id and reply.reply_window_open
    assert second.conversation.etag != first.conversation.etag  # the conversation itself comes fresh from the write
    again = await client.conversations.GetConversation(cs.GetConversationRequest(conversation_id=first.conversation.id))
    assert again.conversation == second.conversation  # and its cached copy was invalidated by the message


async def test_a_stale_route_to_a_closed_conversation_is_replaced(cluster: Cluster, database_url: str) -> None:
    """A route cached before changes its process never heard of (written here behind the server's back) still
    delivers: the closed conversation refuses the message, PostgreSQL's route differs, the call follows that."""
    node = await cluster.start()
    client = await _tenant(node)
    genesys_id = "gen-" + uuid.uuid4().hex
    old = await create(client, genesys_conversation_id=genesys_id)
    assert (await outbound(client, genesys_id)).conversation.id == old.id  # the route is cached
    new_id = str(uuid.uuid4())
    await owner_query(
        database_url, "UPDATE conversations SET state = 'closed', closed_at = now() WHERE id = %s", old.id
    )
    await owner_query(
        database_url,
        "WITH made AS (INSERT INTO conversations (tenant_id, id, whatsapp_conversation_id, genesys_conversation_id)"
        " VALUES (%s, %s, 'wa-new', %s) RETURNING tenant_id, id, genesys_conversation_id)"
        " INSERT INTO conversation_genesys_ids (tenant_id, id, conversation_id, genesys_conversation_id)"
        " SELECT tenant_id, gen_random_uuid(), id, genesys_conversation_id FROM made",
        client.tenant_id,
        new_id,
        genesys_id,
    )

    rerouted = await outbound(client, genesys_id, content="after the switch")

    assert rerouted.message_created and rerouted.conversation.id == new_id and rerouted.whatsapp_id == "wa-new"
    loads, hits = node.counts(Kind.MAPPING)
    assert (await outbound(client, genesys_id)).conversation.id == new_id
    assert node.counts(Kind.MAPPING) == (loads, hits + 1)  # the fresh route replaced the stale one


async def test_500_concurrent_lookups_of_a_cold_key_read_the_database_at_most_twice(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await cluster.start()
    client = await _tenant(node)
    made = await create(client)
    reads = 0
    lookup = ConversationService.lookup_by_whatsapp_id

    async def counted(self: ConversationService, tenant_id: uuid.UUID, whatsapp_id: str) -> Any:
        nonlocal reads
        reads += 1  # the real database answers; this only counts
        return await lookup(self, tenant_id, whatsapp_id)

    monkeypatch.setattr(ConversationService, "lookup_by_whatsapp_id", counted)
    loads_before = node.counts(Kind.CONVERSATION)[0]
    request = cs.LookupConversationRequest(whatsapp_conversation_id=made.whatsapp_conversation_id)

    answers = await asyncio.gather(*(client.conversations.LookupConversation(request) for _ in range(500)))

    assert all(answer.conversation == made for answer in answers)
    assert 1 <= reads <= 2
    assert node.counts(Kind.CONVERSATION)[0] - loads_before == reads


REDIS_TIMEOUT = 0.05
BOUND = REDIS_TIMEOUT + 0.2  # the Redis timeout plus a generous allowance for the database and gRPC
Lookup = tuple[Callable[[], Awaitable[Any]], Any]  # a call, and the answer it must give


async def test_lookups_answer_in_bounded_time_while_redis_is_stalled_and_the_cache_resumes(
    cluster: Cluster, proxy: TcpProxy, redis_url: str
) -> None:
    node = await cluster.start(
        redis_url=proxied(redis_url, proxy),
        redis_timeout_ms=int(REDIS_TIMEOUT * 1000),
        cache_breaker_open_seconds=0.5,  # shorter than the 2 s default, so the test sees the breaker close sooner
    )
    client = await _tenant(node)
    lookups = [lookup for _ in range(5) for lookup in await _lookups(client)]
    for call, answer in lookups:
        assert await call() == answer  # now cached
    proxy.stall()

    # Long enough to see each phase: Redis timing out, then the breaker open.
    durations = await _run_for(1.5, lookups)

    assert max(durations) < BOUND, f"a call took {max(durations) * 1000:.0f} ms"
    assert node.app.cache.breaker.opens >= 1
    proxy.unstall()
    await until_redis_serves_again(node, lookups)


async def _lookups(client: Client) -> list[Lookup]:
    """A lookup of each cached kind about one new customer and conversation."""
    wa = new_wa_id()
    resolved = await inbound(client, wa, customer_name="Stalled")
    conversation, customer = resolved.conversation, resolved.context.customer
    conversations, customers = client.conversations, client.customers
    return [
        (
            _field(conversations.GetConversation, cs.GetConversationRequest(conversation_id=conversation.id)),
            conversation,
        ),
        (
            _field(conversations.LookupConversation, cs.LookupConversationRequest(whatsapp_conversation_id=wa)),
            conversation,
        ),
        (_field(customers.GetCustomer, cus.GetCustomerRequest(customer_id=customer.id)), customer),
        (_field(customers.LookupCustomer, cus.LookupCustomerRequest(phone_number=customer.phone_number)), customer),
    ]


def _field(method: Any, request: Any) -> Callable[[], Awaitable[Any]]:
    """A call answering the resource its response wraps."""

    async def call() -> Any:
        reply = await method(request)
        return reply.conversation if hasattr(reply, "conversation") else reply.customer

    return call


async def _run_for(seconds: float, lookups: list[Lookup]) -> list[float]:
    """Runs the lookups round after round for `seconds`, checking every answer; returns each call's duration."""
    durations = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for call, answer in lookups:
            started = time.perf_counter()
            assert await call() == answer
            durations.append(time.perf_counter() - started)
    return durations


async def until_redis_serves_again(node: Node, lookups: list[Lookup], timeout: float = 10.0) -> None:
    """Drives lookups until the breaker closes again, then shows a read answered by Redis (no load)."""
    cache = node.app.cache
    deadline = time.monotonic() + timeout
    # The cache probes Redis by itself, then waits a short settling time before reading it again.
    while cache.breaker.state is not State.CLOSED or not cache.redis.readable:
        if time.monotonic() > deadline:
            raise AssertionError("the breaker did not close after Redis came back")
        call, answer = lookups[0]
        assert await call() == answer
        await asyncio.sleep(0.05)
    stats = cache.stats.by_kind[Kind.CONVERSATION]
    loads, redis_hits = stats.loads, stats.redis_hits
    call, answer = lookups[1]  # not read since the stall: not in the in-process tier, still in Redis
    assert await call() == answer
    assert (stats.loads, stats.redis_hits) == (loads, redis_hits + 1)
