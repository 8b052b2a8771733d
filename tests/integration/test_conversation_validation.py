"""Bad input to every ConversationService RPC: INVALID_ARGUMENT naming the field, never INTERNAL, nothing written."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from statemgr.v1 import conversation_pb2 as pb
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.test_conversations import ACTIVE, WAITING, count_rows, create, get, struct, wa_id

BAD = grpc.StatusCode.INVALID_ARGUMENT
TABLES = (
    "conversations",
    "conversation_state_transitions",
    "conversation_assignments",
    "conversation_genesys_ids",
    "events",
)
LONG_ID = "x" * 257
BIG = struct(blob="x" * (16 * 1024))
DEEP = struct(a={"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {"k": 1}}}}}}}}}})


def ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=paths)


def bad_requests(existing: str) -> list[tuple[str, Any, str]]:
    """(rpc, request, field named in the error) for every kind of bad input."""
    conversation = pb.Conversation
    create_with = lambda **f: cs.CreateConversationRequest(conversation=conversation(**f))  # noqa: E731
    update_with = lambda paths, **f: cs.UpdateConversationRequest(conversation=conversation(**f), update_mask=paths)  # noqa: E731
    wa = {"whatsapp_conversation_id": wa_id()}
    return [
        ("CreateConversation", cs.CreateConversationRequest(), "conversation.whatsapp_conversation_id"),
        ("CreateConversation", create_with(whatsapp_conversation_id="   "), "conversation.whatsapp_conversation_id"),
        ("CreateConversation", create_with(whatsapp_conversation_id=LONG_ID), "conversation.whatsapp_conversation_id"),
        (
            "CreateConversation",
            create_with(**wa, genesys_conversation_id=LONG_ID),
            "conversation.genesys_conversation_id",
        ),
        ("CreateConversation", create_with(**wa, customer_id="nope"), "conversation.customer_id"),
        ("CreateConversation", create_with(**wa, customer_id=str(uuid.uuid4())), "conversation.customer_id"),
        ("CreateConversation", create_with(**wa, agent_id="12345"), "conversation.agent_id"),
        ("CreateConversation", create_with(**wa, metadata=BIG), "conversation.metadata"),
        ("CreateConversation", create_with(**wa, metadata=DEEP), "conversation.metadata"),
        (
            "CreateConversation",
            cs.CreateConversationRequest(conversation=conversation(**wa), request_id="r-1"),
            "request_id",
        ),
        ("GetConversation", cs.GetConversationRequest(), "conversation_id"),
        ("GetConversation", cs.GetConversationRequest(conversation_id="not-a-uuid"), "conversation_id"),
        ("LookupConversation", cs.LookupConversationRequest(), "whatsapp_conversation_id"),
        ("LookupConversation", cs.LookupConversationRequest(genesys_conversation_id=""), "genesys_conversation_id"),
        (
            "LookupConversation",
            cs.LookupConversationRequest(whatsapp_conversation_id=LONG_ID),
            "whatsapp_conversation_id",
        ),
        ("ListConversations", cs.ListConversationsRequest(page_size=-1), "page_size"),
        ("ListConversations", cs.ListConversationsRequest(state=99), "state"),
        ("ListConversations", cs.ListConversationsRequest(agent_id="a"), "agent_id"),
        ("ListConversations", cs.ListConversationsRequest(customer_id="c"), "customer_id"),
        ("ListConversations", cs.ListConversationsRequest(page_token="garbage!"), "page_token"),
        (
            "ListConversations",
            cs.ListConversationsRequest(last_activity_start_time=ts(2000), last_activity_end_time=ts(1000)),
            "last_activity_end_time",
        ),
        ("SearchConversations", cs.SearchConversationsRequest(), "whatsapp_conversation_id"),
        ("SearchConversations", cs.SearchConversationsRequest(page_size=-5, metadata=struct(a=1)), "page_size"),
        ("SearchConversations", cs.SearchConversationsRequest(metadata=BIG), "metadata"),
        (
            "SearchConversations",
            cs.SearchConversationsRequest(genesys_conversation_id=LONG_ID),
            "genesys_conversation_id",
        ),
        ("SearchConversations", cs.SearchConversationsRequest(customer_name="x"), "customer_name"),
        (
            "SearchConversations",
            cs.SearchConversationsRequest(customer_phone_number="not a phone"),
            "customer_phone_number",
        ),
        ("UpdateConversation", update_with(mask("metadata"), id="nope"), "conversation.id"),
        ("UpdateConversation", update_with(mask(), id=existing), "update_mask"),
        ("UpdateConversation", update_with(mask("state"), id=existing), "update_mask"),
        ("UpdateConversation", update_with(mask("metadata"), id=existing, metadata=BIG), "conversation.metadata"),
        (
            "UpdateConversation",
            update_with(mask("genesys_conversation_id"), id=existing),
            "conversation.genesys_conversation_id",
        ),
        (
            "UpdateConversation",
            update_with(mask("genesys_conversation_id"), id=existing, genesys_conversation_id=LONG_ID),
            "conversation.genesys_conversation_id",
        ),
        ("TransitionConversation", cs.TransitionConversationRequest(conversation_id=existing), "state"),
        ("TransitionConversation", cs.TransitionConversationRequest(conversation_id=existing, state=7), "state"),
        ("TransitionConversation", cs.TransitionConversationRequest(state=WAITING), "conversation_id"),
        (
            "TransitionConversation",
            cs.TransitionConversationRequest(conversation_id=existing, state=WAITING, reason="r" * 1001),
            "reason",
        ),
        ("TransferConversation", cs.TransferConversationRequest(conversation_id=existing), "agent_id"),
        ("TransferConversation", cs.TransferConversationRequest(conversation_id=existing, agent_id="bob"), "agent_id"),
        ("TransferConversation", cs.TransferConversationRequest(agent_id=str(uuid.uuid4())), "conversation_id"),
        (
            "TransferConversation",
            cs.TransferConversationRequest(conversation_id=existing, agent_id=str(uuid.uuid4()), reason="r" * 1001),
            "reason",
        ),
        ("CloseConversation", cs.CloseConversationRequest(), "conversation_id"),
        ("CloseConversation", cs.CloseConversationRequest(conversation_id=existing, reason="r" * 1001), "reason"),
        ("GetConversationHistory", cs.GetConversationHistoryRequest(conversation_id="x"), "conversation_id"),
        (
            "GetConversationHistory",
            cs.GetConversationHistoryRequest(conversation_id=existing, page_size=-1),
            "page_size",
        ),
        (
            "GetConversationHistory",
            cs.GetConversationHistoryRequest(conversation_id=existing, page_token="e30"),
            "page_token",
        ),
    ]


async def counts(database_url: str, tenant: Client) -> dict[str, int]:
    return {table: await count_rows(database_url, table, tenant.tenant_id) for table in TABLES}


async def test_bad_input_names_the_field_and_writes_nothing(tenant: Client, database_url: str) -> None:
    existing = await create(tenant, metadata=struct(a=1))
    before = await counts(database_url, tenant)
    for rpc, request, field in bad_requests(existing.id):
        call: Callable[[Any], Awaitable[Any]] = getattr(tenant.conversations, rpc)
        exc = await expect(call(request), BAD, field)
        assert "internal" not in (exc.details() or "").lower()
    assert await counts(database_url, tenant) == before
    assert await get(tenant, existing.id) == existing


async def page_token(client: Client, **filters: Any) -> str:
    page = await client.conversations.ListConversations(cs.ListConversationsRequest(page_size=1, **filters))
    assert page.next_page_token
    return page.next_page_token


async def test_page_tokens_of_another_query_or_tenant_are_refused(clients: Clients, tenant: Client) -> None:
    other = await clients.new_tenant("Tenant B")
    for client in (tenant, other):
        for _ in range(2):
            await create(client)
    active_token = await page_token(tenant, state=ACTIVE)
    assert (
        await tenant.conversations.ListConversations(cs.ListConversationsRequest(state=ACTIVE, page_token=active_token))
    ).conversations
    misuse = [
        tenant.conversations.ListConversations(cs.ListConversationsRequest(page_token=active_token)),
        tenant.conversations.ListConversations(cs.ListConversationsRequest(state=WAITING, page_token=active_token)),
        tenant.conversations.SearchConversations(
            cs.SearchConversationsRequest(metadata=struct(a=1), page_token=active_token)
        ),
        other.conversations.ListConversations(cs.ListConversationsRequest(state=ACTIVE, page_token=active_token)),
    ]
    for call in misuse:
        exc = await expect(call, BAD, "page_token")
        assert "another" in (exc.details() or "")
    conversation = await create(tenant)
    await tenant.conversations.TransitionConversation(
        cs.TransitionConversationRequest(conversation_id=conversation.id, state=WAITING)
    )
    history = await tenant.conversations.GetConversationHistory(
        cs.GetConversationHistoryRequest(conversation_id=conversation.id, page_size=1)
    )
    assert history.next_page_token
    other_conversation = (await tenant.conversations.ListConversations(cs.ListConversationsRequest())).conversations[-1]
    await expect(
        tenant.conversations.GetConversationHistory(
            cs.GetConversationHistoryRequest(conversation_id=other_conversation.id, page_token=history.next_page_token)
        ),
        BAD,
        "page_token",
    )
