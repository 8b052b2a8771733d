"""Requests that do not decode, Structs with NaN or Infinity, Timestamps out of range: INVALID_ARGUMENT naming the
field, never UNKNOWN or INTERNAL (issue 8, defect 5)."""

from __future__ import annotations

import math

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from statemgr.v1 import conversation_pb2, customer_pb2, message_pb2
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import integration_service_pb2 as ins
from statemgr.v1 import message_service_pb2 as ms
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect, violated_fields

BAD = grpc.StatusCode.INVALID_ARGUMENT
YEAR_1 = -62_135_596_800
YEAR_9999_END = 253_402_300_799


def raw_call(client: Client, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    """A call that sends its bytes as they are (no serializer), with the client's key."""
    metadata = (("authorization", f"Bearer {client.api_key}"),) if client.api_key else ()
    multicallable = client.channel.unary_unary(method)

    def call(body: bytes) -> grpc.aio.UnaryUnaryCall:
        return multicallable(body, metadata=metadata, timeout=10)

    return call  # type: ignore[return-value]


def bad_utf8(field_number: int, inner: bytes = b"") -> bytes:
    """`inner` then a length-delimited field `field_number` holding bytes that are not UTF-8."""
    junk = b"ab\xff\xfe"
    return inner + bytes([(field_number << 3) | 2, len(junk)]) + junk


def nested(field_number: int, body: bytes) -> bytes:
    return bytes([(field_number << 3) | 2, len(body)]) + body


async def test_invalid_utf8_in_a_string_field_names_the_field(tenant: Client) -> None:
    resolve = raw_call(tenant, "/statemgr.v1.IntegrationService/ResolveInbound")
    exc = await expect(resolve(bad_utf8(5)), BAD, "whatsapp_message_id")
    assert "does not decode" in (exc.details() or "")


async def test_invalid_utf8_in_a_nested_field_names_the_path(tenant: Client) -> None:
    upsert = raw_call(tenant, "/statemgr.v1.CustomerService/UpsertCustomer")
    whatsapp_id = 2  # Customer.whatsapp_id
    await expect(upsert(nested(1, bad_utf8(whatsapp_id))), BAD, "customer.whatsapp_id")
    batch = raw_call(tenant, "/statemgr.v1.MessageService/BatchUpdateMessageStatus")
    good = ms.UpdateMessageStatusRequest(whatsapp_message_id="w1", status=message_pb2.MESSAGE_STATUS_READ)
    body = nested(1, good.SerializeToString()) + nested(1, bad_utf8(1))
    await expect(batch(body), BAD, "requests[1].whatsapp_message_id")


@pytest.mark.parametrize("body", [b"\xff\xff\xff\xff", b"\x0a\xff", b"\x07", bytes(range(256))])
async def test_random_bytes_are_invalid_argument(tenant: Client, body: bytes) -> None:
    exc = await expect(raw_call(tenant, "/statemgr.v1.ConversationService/GetConversation")(body), BAD)
    assert "GetConversationRequest" in (exc.details() or "") or violated_fields(exc)


async def test_an_unauthenticated_caller_hears_unauthenticated_first(clients: Clients) -> None:
    anonymous = clients.with_key("")
    await expect(
        raw_call(anonymous, "/statemgr.v1.IntegrationService/ResolveInbound")(bad_utf8(5)),
        grpc.StatusCode.UNAUTHENTICATED,
    )


async def test_health_and_reflection_refuse_undecodable_requests(clients: Clients) -> None:
    anonymous = clients.with_key("")
    await expect(raw_call(anonymous, "/grpc.health.v1.Health/Check")(bad_utf8(1)), BAD, "service")
    info = anonymous.channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    replies = info(iter([b"\xff\xff"]), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in replies:
            pass
    assert refused.value.code() == BAD


def struct_with(value: float) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update({"ok": 1, "nested": {"list": [1, value]}})
    return s


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_nan_and_infinity_in_a_struct_name_the_field(tenant: Client, value: float) -> None:
    create = cs.CreateConversationRequest(
        conversation=conversation_pb2.Conversation(whatsapp_conversation_id="wa-nan", metadata=struct_with(value))
    )
    await expect(tenant.conversations.CreateConversation(create), BAD, "conversation.metadata")
    upsert = cus.UpsertCustomerRequest(
        customer=customer_pb2.Customer(whatsapp_id="447400123456", preferences=struct_with(value))
    )
    await expect(tenant.customers.UpsertCustomer(upsert), BAD, "customer.preferences")
    search = cs.SearchConversationsRequest(metadata=struct_with(value))
    await expect(tenant.conversations.SearchConversations(search), BAD, "metadata")


@pytest.mark.parametrize(
    "when",
    [
        timestamp_pb2.Timestamp(seconds=1_790_000_000, nanos=2_000_000_000),
        timestamp_pb2.Timestamp(seconds=1_790_000_000, nanos=-1),
        timestamp_pb2.Timestamp(seconds=YEAR_9999_END + 1),
        timestamp_pb2.Timestamp(seconds=YEAR_1 - 1),
    ],
)
async def test_a_timestamp_out_of_range_names_the_field(tenant: Client, when: timestamp_pb2.Timestamp) -> None:
    inbound = ins.ResolveInboundRequest(whatsapp_id="447400123456", whatsapp_message_id="w-ts", send_time=when)
    await expect(tenant.integration.ResolveInbound(inbound), BAD, "send_time")
    status = ms.UpdateMessageStatusRequest(
        whatsapp_message_id="w-ts", status=message_pb2.MESSAGE_STATUS_READ, status_time=when
    )
    await expect(tenant.messages.UpdateMessageStatus(status), BAD, "status_time")
    batch = ms.BatchUpdateMessageStatusRequest(requests=[status])
    reply = await tenant.messages.BatchUpdateMessageStatus(batch)
    assert reply.results[0].code == BAD.value[0] and reply.results[0].field == "status_time"
    listing = cs.ListConversationsRequest(last_activity_start_time=when)
    await expect(tenant.conversations.ListConversations(listing), BAD, "last_activity_start_time")


@pytest.mark.parametrize("seconds", [YEAR_1, YEAR_9999_END])
async def test_timestamps_at_the_ends_of_the_range_do_not_fail_the_server(tenant: Client, seconds: int) -> None:
    when = timestamp_pb2.Timestamp(seconds=seconds, nanos=999_999_999)
    inbound = ins.ResolveInboundRequest(whatsapp_id="447400123456", whatsapp_message_id=f"w-{seconds}", send_time=when)
    try:
        resolved = await tenant.integration.ResolveInbound(inbound)
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == BAD, exc.details()
        assert violated_fields(exc) == ["send_time"]
    else:  # stored: every read of it must work too
        get = cs.GetConversationRequest(conversation_id=resolved.conversation.id)
        await tenant.conversations.GetConversation(get)
        await tenant.customers.GetCustomerContext(cus.GetCustomerContextRequest(whatsapp_id="447400123456"))
        await tenant.conversations.GetConversationHistory(
            cs.GetConversationHistoryRequest(conversation_id=resolved.conversation.id)
        )
    listing = cs.ListConversationsRequest(last_activity_start_time=when, last_activity_end_time=when)
    await tenant.conversations.ListConversations(listing)
