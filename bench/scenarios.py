"""The statemgr scenarios: the registry where benchmarks of the real server plug in.

A scenario has a name, the floor case it is compared to (see ``bench.floor``), and a setup coroutine that is
given a channel to the server and the admin key, makes its own tenant and API key through TenantService, prepares
what it needs, and returns the call to measure. Add a scenario by writing its setup and listing it in SCENARIOS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc

from bench.loadgen import Call, Case
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
Setup = Callable[[grpc.aio.Channel, str], Awaitable[Call]]

RPC_TIMEOUT_S = 10.0
LOOKUP_CONVERSATIONS = 100
TRACKING_CONVERSATIONS = 20
INBOUND_CUSTOMERS = 50


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A statemgr workload and the floor case it is measured against."""

    name: str
    floor: str
    description: str
    setup: Setup
    rpcs: int = 1


def _stub(factory: Callable[[grpc.aio.Channel], _Stub], channel: grpc.aio.Channel) -> _Stub:
    """Builds a generated stub; its constructor is untyped, this call is not."""
    return factory(channel)


def _bearer(secret: str) -> Metadata:
    return (("authorization", f"Bearer {secret}"),)


async def new_tenant(channel: grpc.aio.Channel, admin_key: str) -> Metadata:
    """Creates a tenant and an API key for it; returns the call metadata that acts as that tenant."""
    tenants = _stub(tenant_service_pb2_grpc.TenantServiceStub, channel)
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


async def _create_conversations(
    stub: conversation_service_pb2_grpc.ConversationServiceStub, metadata: Metadata, prefix: str, count: int
) -> list[conversation_pb2.Conversation]:
    conversations = []
    for n in range(count):
        request = conversation_service_pb2.CreateConversationRequest(
            conversation=conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-{prefix}-setup-{n}"),
            request_id=str(uuid.uuid4()),
        )
        response = await stub.CreateConversation(request, metadata=metadata, timeout=RPC_TIMEOUT_S)
        conversations.append(response.conversation)
    return conversations


async def create_conversation(channel: grpc.aio.Channel, admin_key: str) -> Call:
    """CreateConversation with a new WhatsApp conversation id on every call."""
    metadata = await new_tenant(channel, admin_key)
    stub = _stub(conversation_service_pb2_grpc.ConversationServiceStub, channel)
    prefix = uuid.uuid4().hex[:12]
    counter = itertools.count()

    async def call(i: int) -> None:
        request = conversation_service_pb2.CreateConversationRequest(
            conversation=conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-{prefix}-{next(counter)}"),
            request_id=str(uuid.uuid4()),
        )
        await stub.CreateConversation(request, metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


async def lookup_conversation(channel: grpc.aio.Channel, admin_key: str) -> Call:
    """LookupConversation by WhatsApp id, round-robin over 100 conversations made in setup (the cached path)."""
    metadata = await new_tenant(channel, admin_key)
    stub = _stub(conversation_service_pb2_grpc.ConversationServiceStub, channel)
    made = await _create_conversations(stub, metadata, uuid.uuid4().hex[:12], LOOKUP_CONVERSATIONS)
    requests = [
        conversation_service_pb2.LookupConversationRequest(whatsapp_conversation_id=c.whatsapp_conversation_id)
        for c in made
    ]

    async def call(i: int) -> None:
        await stub.LookupConversation(requests[i % len(requests)], metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


async def message_tracking(channel: grpc.aio.Channel, admin_key: str) -> Call:
    """RecordMessage (outbound), then UpdateMessageStatus SENT, DELIVERED, READ by its WhatsApp message id."""
    metadata = await new_tenant(channel, admin_key)
    conversations = _stub(conversation_service_pb2_grpc.ConversationServiceStub, channel)
    messages = _stub(message_service_pb2_grpc.MessageServiceStub, channel)
    prefix = uuid.uuid4().hex[:12]
    made = await _create_conversations(conversations, metadata, prefix, TRACKING_CONVERSATIONS)
    counter = itertools.count()
    statuses = (message_pb2.MESSAGE_STATUS_SENT, message_pb2.MESSAGE_STATUS_DELIVERED, message_pb2.MESSAGE_STATUS_READ)

    async def call(i: int) -> None:
        n = next(counter)
        wamid = f"wamid.{prefix}.{n}"
        message = message_pb2.Message(
            conversation_id=made[n % len(made)].id,
            whatsapp_message_id=wamid,
            direction=message_pb2.MESSAGE_DIRECTION_OUTBOUND,
            content="Your order has shipped.",
        )
        request = message_service_pb2.RecordMessageRequest(message=message)
        await messages.RecordMessage(request, metadata=metadata, timeout=RPC_TIMEOUT_S)
        for status in statuses:
            update = message_service_pb2.UpdateMessageStatusRequest(whatsapp_message_id=wamid, status=status)
            await messages.UpdateMessageStatus(update, metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


async def resolve_inbound(channel: grpc.aio.Channel, admin_key: str) -> Call:
    """ResolveInbound with a new WhatsApp message id per call, round-robin over 50 customers."""
    metadata = await new_tenant(channel, admin_key)
    stub = _stub(integration_service_pb2_grpc.IntegrationServiceStub, channel)
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
        await stub.ResolveInbound(request, metadata=metadata, timeout=RPC_TIMEOUT_S)

    return call


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("create-conversation", "two-insert-rpc", "CreateConversation, unique WhatsApp id", create_conversation),
    Scenario(
        "lookup-conversation", "noop-rpc", "cached LookupConversation by WhatsApp id, 100 ids", lookup_conversation
    ),
    Scenario("message-tracking", "write-x4-rpc", "RecordMessage + 3 UpdateMessageStatus (4 RPCs)", message_tracking, 4),
    Scenario("resolve-inbound", "upsert-rpc", "ResolveInbound, new message id, 50 customers", resolve_inbound),
)


@contextlib.asynccontextmanager
async def prepared(target: str, admin_key: str) -> AsyncIterator[list[Case]]:
    """Opens a channel to the statemgr server, runs every scenario's setup, and yields the cases."""
    async with grpc.aio.insecure_channel(target) as channel:
        cases = [Case(s.name, s.floor, s.description, await s.setup(channel, admin_key), s.rpcs) for s in SCENARIOS]
        yield cases
