"""The statemgr scenarios: the registry where benchmarks of the real server plug in.

A scenario has a name, the floor case it is compared to (see ``bench.floor``), its open-loop rate, and a setup
coroutine that is given a ``Context`` (channels to the server, the admin key, how many calls to expect), makes its
own tenant and API key through TenantService, prepares what it needs, and returns the call to measure. Add a
scenario by writing its setup and listing it in SCENARIOS; ``bench.suite`` says where it runs and its targets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.loadgen import Call
from statemgr.v1 import (
    conversation_pb2,
    conversation_service_pb2,
    conversation_service_pb2_grpc,
    integration_service_pb2,
    integration_service_pb2_grpc,
    message_pb2,
    message_service_pb2,
    message_service_pb2_grpc,
    tenant_pb2,
    tenant_service_pb2,
    tenant_service_pb2_grpc,
)

Metadata = tuple[tuple[str, str], ...]
_Stub = TypeVar("_Stub")
_T = TypeVar("_T")

RPC_TIMEOUT_S = 10.0
LOOKUP_CONVERSATIONS = 100  # the stripped diagnostic: every id stays in the in-process tier
SPREAD_CONVERSATIONS = 5_000  # production: lookups spread over as many conversations as a busy tenant has open
HOT_CONVERSATIONS = 50  # the skewed mix: HOT_SHARE of the lookups go to these, the rest spread over all
HOT_SHARE = 0.8
TRACKING_CONVERSATIONS = 500
INBOUND_CUSTOMERS = 50
SETUP_CONCURRENCY = 32
STATUSES = (message_pb2.MESSAGE_STATUS_SENT, message_pb2.MESSAGE_STATUS_DELIVERED, message_pb2.MESSAGE_STATUS_READ)


@dataclasses.dataclass(frozen=True)
class Context:
    """What a setup is given: channels to the server (calls should spread over them: with several workers, each
    channel is a connection to one of them), the admin key, and an upper estimate of the calls it will measure."""

    channels: Sequence[grpc.aio.Channel]
    admin_key: str
    calls: int


Setup = Callable[[Context], Awaitable[Call]]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A statemgr workload, the floor case it is measured against, and its open-loop rate in RPCs per second."""

    name: str
    floor: str
    description: str
    setup: Setup
    rate: float
    rpcs: int = 1


class PoolExhausted(RuntimeError):
    """More calls than the setup prepared data for: the figures would mix in cheaper no-op calls."""


def _stub(factory: Callable[[grpc.aio.Channel], _Stub], channel: grpc.aio.Channel) -> _Stub:
    """Builds a generated stub; its constructor is untyped, this call is not."""
    return factory(channel)


def _stubs(factory: Callable[[grpc.aio.Channel], _Stub], ctx: Context) -> list[_Stub]:
    return [factory(channel) for channel in ctx.channels]


async def _gather_limited(count: int, make: Callable[[int], Awaitable[_T]]) -> list[_T]:
    """``make(0..count-1)``, SETUP_CONCURRENCY at a time, results in order."""
    results: list[_T | None] = [None] * count
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            results[n] = await make(n)

    await asyncio.gather(*(worker() for _ in range(SETUP_CONCURRENCY)))
    return [r for r in results if r is not None]


def _bearer(secret: str) -> Metadata:
    return (("authorization", f"Bearer {secret}"),)


async def new_tenant(ctx: Context) -> Metadata:
    """Creates a tenant and an API key for it; returns the call metadata that acts as that tenant."""
    admin_key = ctx.admin_key
    tenants = _stub(tenant_service_pb2_grpc.TenantServiceStub, ctx.channels[0])
    name = f"bench {uuid.uuid4().hex[:8]}"
    created = await tenants.CreateTenant(
        tenant_service_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name=name, default_region="GB")),
        metadata=_bearer(admin_key),
        timeout=RPC_TIMEOUT_S,
    )
    key = await tenants.CreateApiKey(
        tenant_service_pb2.CreateApiKeyRequest(tenant_id=created.tenant.id, display_name="bench"),
        metadata=_bearer(admin_key),
        timeout=RPC_TIMEOUT_S,
    )
    return _bearer(key.secret)


async def create_conversations(
    stub: conversation_service_pb2_grpc.ConversationServiceStub, metadata: Metadata, prefix: str, count: int
) -> list[conversation_pb2.Conversation]:
    async def create(n: int) -> conversation_pb2.Conversation:
        request = conversation_service_pb2.CreateConversationRequest(
            conversation=conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-{prefix}-setup-{n}"),
            request_id=str(uuid.uuid4()),
        )
        response = await stub.CreateConversation(request, metadata=metadata, timeout=RPC_TIMEOUT_S)
        made: conversation_pb2.Conversation = response.conversation
        return made

    return await _gather_limited(count, create)


async def noop(ctx: Context) -> Call:
    """grpc.health.v1 Check on the statemgr server: through its interceptor, which lets it by without auth."""
    stubs = _stubs(health_pb2_grpc.HealthStub, ctx)
    request = health_pb2.HealthCheckRequest()

    async def call(i: int) -> None:
        await stubs[i % len(stubs)].Check(request, timeout=RPC_TIMEOUT_S)

    return call


async def create_conversation(ctx: Context) -> Call:
    """CreateConversation with a new WhatsApp conversation id on every call."""
    metadata = await new_tenant(ctx)
    stubs = _stubs(conversation_service_pb2_grpc.ConversationServiceStub, ctx)
    prefix = uuid.uuid4().hex[:12]
    counter = itertools.count()

    async def call(i: int) -> None:
        request = conversation_service_pb2.CreateConversationRequest(
            conversation=conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-{prefix}-{next(counter)}"),
            request_id=str(uuid.uuid4()),
        )
        await stubs[i % len(stubs)].CreateConversation(request, metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


async def _lookups(ctx: Context, count: int, order: Callable[[int], list[int]]) -> Call:
    """LookupConversation by WhatsApp id over ``count`` conversations made in setup and looked up once there (so
    the measured calls are cache hits), the n-th call asking for conversation ``order(count)[n % len(...)]``."""
    metadata = await new_tenant(ctx)
    stubs = _stubs(conversation_service_pb2_grpc.ConversationServiceStub, ctx)
    made = await create_conversations(stubs[0], metadata, uuid.uuid4().hex[:12], count)
    requests = [
        conversation_service_pb2.LookupConversationRequest(whatsapp_conversation_id=c.whatsapp_conversation_id)
        for c in made
    ]

    async def prime(n: int) -> bool:
        await stubs[n % len(stubs)].LookupConversation(requests[n], metadata=metadata, timeout=RPC_TIMEOUT_S)
        return True

    await _gather_limited(len(requests), prime)
    sequence = [requests[n] for n in order(len(requests))]
    counter = itertools.count()

    async def call(i: int) -> None:
        stub = stubs[i % len(stubs)]
        request = sequence[next(counter) % len(sequence)]
        await stub.LookupConversation(request, metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


def _round_robin(count: int) -> list[int]:
    return list(range(count))


def _skewed(count: int) -> list[int]:
    """HOT_SHARE of the calls on the first HOT_CONVERSATIONS, the rest uniform over all; fixed seed."""
    pick = random.Random(13)
    return [
        pick.randrange(HOT_CONVERSATIONS) if pick.random() < HOT_SHARE else pick.randrange(count)
        for _ in range(100_000)
    ]


async def lookup_conversation(ctx: Context) -> Call:
    """LookupConversation by WhatsApp id, round-robin over 100 conversations made in setup (the in-process tier)."""
    return await _lookups(ctx, LOOKUP_CONVERSATIONS, _round_robin)


async def lookup_spread(ctx: Context) -> Call:
    """LookupConversation by WhatsApp id, round-robin over 5,000 conversations made in setup: each is asked for
    again only after 5,000 other calls, so at production rates most answers come from Redis, not the process."""
    return await _lookups(ctx, SPREAD_CONVERSATIONS, _round_robin)


async def lookup_skewed(ctx: Context) -> Call:
    """LookupConversation by WhatsApp id over 5,000 conversations, 80% of the calls on 50 of them."""
    return await _lookups(ctx, SPREAD_CONVERSATIONS, _skewed)


def _outbound(conversation_id: str, wamid: str) -> message_service_pb2.RecordMessageRequest:
    message = message_pb2.Message(
        conversation_id=conversation_id,
        whatsapp_message_id=wamid,
        direction=message_pb2.MESSAGE_DIRECTION_OUTBOUND,
        content="Your order has shipped.",
    )
    return message_service_pb2.RecordMessageRequest(message=message)


async def update_message_status(ctx: Context) -> Call:
    """UpdateMessageStatus alone: messages recorded in setup (a third as many as the calls expected), then
    SENT to each in turn, then DELIVERED to each, then READ: round-robin by WhatsApp message id, so every report
    changes its message (moves its status up) and concurrent reports touch different rows."""
    metadata = await new_tenant(ctx)
    conversations = _stub(conversation_service_pb2_grpc.ConversationServiceStub, ctx.channels[0])
    stubs = _stubs(message_service_pb2_grpc.MessageServiceStub, ctx)
    prefix = uuid.uuid4().hex[:12]
    made = await create_conversations(conversations, metadata, prefix, TRACKING_CONVERSATIONS)
    count = max(1, -(-ctx.calls // len(STATUSES)))

    async def record(n: int) -> str:
        wamid = f"wamid.{prefix}.{n}"
        request = _outbound(made[n % len(made)].id, wamid)
        await stubs[n % len(stubs)].RecordMessage(request, metadata=metadata, timeout=RPC_TIMEOUT_S)
        return wamid

    wamids = await _gather_limited(count, record)
    counter = itertools.count()

    async def call(i: int) -> None:
        n = next(counter)
        if n >= len(wamids) * len(STATUSES):
            await asyncio.sleep(0)  # let the other callers run: an exhausted pool must not spin the loop
            raise PoolExhausted(f"only {len(wamids)} messages were recorded; raise the estimate in bench.suite")
        update = message_service_pb2.UpdateMessageStatusRequest(
            whatsapp_message_id=wamids[n % len(wamids)], status=STATUSES[n // len(wamids)]
        )
        await stubs[i % len(stubs)].UpdateMessageStatus(update, metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


async def message_tracking(ctx: Context) -> Call:
    """RecordMessage (outbound), then UpdateMessageStatus SENT, DELIVERED, READ by its WhatsApp message id."""
    metadata = await new_tenant(ctx)
    conversations = _stub(conversation_service_pb2_grpc.ConversationServiceStub, ctx.channels[0])
    stubs = _stubs(message_service_pb2_grpc.MessageServiceStub, ctx)
    prefix = uuid.uuid4().hex[:12]
    made = await create_conversations(conversations, metadata, prefix, TRACKING_CONVERSATIONS)
    counter = itertools.count()

    async def call(i: int) -> None:
        n = next(counter)
        messages = stubs[i % len(stubs)]
        wamid = f"wamid.{prefix}.{n}"
        await messages.RecordMessage(_outbound(made[n % len(made)].id, wamid), metadata=metadata, timeout=RPC_TIMEOUT_S)
        for status in STATUSES:
            update = message_service_pb2.UpdateMessageStatusRequest(whatsapp_message_id=wamid, status=status)
            await messages.UpdateMessageStatus(update, metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


async def resolve_inbound(ctx: Context) -> Call:
    """ResolveInbound with a new WhatsApp message id per call, round-robin over 50 customers."""
    metadata = await new_tenant(ctx)
    stubs = _stubs(integration_service_pb2_grpc.IntegrationServiceStub, ctx)
    prefix = uuid.uuid4().hex[:12]
    counter = itertools.count()

    async def call(i: int) -> None:
        n = next(counter)
        customer = n % INBOUND_CUSTOMERS
        request = integration_service_pb2.ResolveInboundRequest(
            whatsapp_id=f"4479460{customer:05d}",
            customer_name=f"Bench Customer {customer}",
            whatsapp_message_id=f"wamid.{prefix}.{n}",
            content="Hello, where is my order?",
        )
        await stubs[i % len(stubs)].ResolveInbound(request, metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


async def resolve_inbound_new(ctx: Context) -> Call:
    """ResolveInbound from a new customer on every call: the customer, the conversation and the message are all
    created, as for the first message of a contact."""
    metadata = await new_tenant(ctx)
    stubs = _stubs(integration_service_pb2_grpc.IntegrationServiceStub, ctx)
    prefix = uuid.uuid4().hex[:12]
    counter = itertools.count()

    async def call(i: int) -> None:
        n = next(counter)
        request = integration_service_pb2.ResolveInboundRequest(
            whatsapp_id=f"4479{n:08d}",
            customer_name=f"Bench Customer {n}",
            whatsapp_message_id=f"wamid.{prefix}.{n}",
            content="Hello, where is my order?",
        )
        await stubs[i % len(stubs)].ResolveInbound(request, metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("statemgr-noop", "noop-rpc", "grpc.health.v1 Check on statemgr (interceptor, no auth)", noop, 1_000),
        Scenario(
            "lookup-conversation",
            "noop-rpc",
            "cached LookupConversation by WhatsApp id, 100 ids",
            lookup_conversation,
            1_000,
        ),
        Scenario(
            "lookup-5k",
            "noop-rpc",
            "cached LookupConversation by WhatsApp id, round-robin over 5,000 ids",
            lookup_spread,
            1_000,
        ),
        Scenario(
            "lookup-5k-skewed",
            "noop-rpc",
            "cached LookupConversation by WhatsApp id, 5,000 ids, 80% of calls on 50 of them",
            lookup_skewed,
            1_000,
        ),
        Scenario(
            "create-conversation",
            "two-insert-rpc",
            "CreateConversation, unique WhatsApp id",
            create_conversation,
            200,
        ),
        Scenario(
            "update-message-status",
            "status-update-rpc",
            "UpdateMessageStatus SENT/DELIVERED/READ, round-robin over messages recorded in setup, 500 conversations",
            update_message_status,
            500,
        ),
        Scenario("resolve-inbound", "upsert-rpc", "ResolveInbound, new message id, 50 customers", resolve_inbound, 200),
        Scenario(
            "resolve-inbound-new",
            "upsert-rpc",
            "ResolveInbound, a new customer (and conversation) every call",
            resolve_inbound_new,
            200,
        ),
        Scenario(
            "message-tracking",
            "write-x4-rpc",
            "RecordMessage + 3 UpdateMessageStatus (4 RPCs)",
            message_tracking,
            500,
            rpcs=4,
        ),
    )
}
