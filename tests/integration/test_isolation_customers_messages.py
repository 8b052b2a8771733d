"""Customers and messages are tenant-isolated exactly as conversations are: another tenant's ids answer NOT_FOUND
like ids that never existed, lists and searches hold none of them, equal provider ids in two tenants are separate,
and the service role with no tenant set sees no row at all."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import field_mask_pb2

from statemgr.v1 import customer_pb2
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import message_pb2 as pb
from statemgr.v1 import message_service_pb2 as ms
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.test_customers import SyncConn, inbound, rows, upsert
from tests.integration.test_isolation import count
from tests.integration.test_messages import READ, record, report, status

NOT_FOUND = grpc.StatusCode.NOT_FOUND
TABLES = ("customers", "customer_name_terms", "messages", "message_status_history", "parked_statuses")


async def not_found_like_a_missing_id(probe: Callable[[str], Awaitable[object]], own_id: str, missing_id: str) -> None:
    """`probe(id)` answers NOT_FOUND for `own_id` (another tenant's) with the same message as for `missing_id`."""
    foreign = await expect(probe(own_id), NOT_FOUND)
    missing = await expect(probe(missing_id), NOT_FOUND)
    assert (foreign.details() or "").replace(own_id, "ID") == (missing.details() or "").replace(missing_id, "ID")


async def two_tenants(clients: Clients) -> tuple[Client, Client, str, str]:
    """Tenant A with a customer, a conversation, a message with a status, and a parked report; an empty tenant B."""
    a, b = await clients.new_tenant("A"), await clients.new_tenant("B")
    resolved = await inbound(
        a, "447400123456", "wamid.shared", customer_name="Alice Anders", phone_number="+447400123456"
    )
    await status(a, report(READ, 1, "wamid.shared"))
    await status(a, report(READ, 1, "wamid.parked-in-a"))
    return a, b, resolved.context.customer.id, resolved.message.id


async def test_another_tenants_ids_are_not_found_like_missing_ones(clients: Clients) -> None:
    a, b, customer_id, message_id = await two_tenants(clients)
    conversation_id = (await a.messages.GetMessage(ms.GetMessageRequest(message_id=message_id))).message.conversation_id
    missing = str(uuid.uuid4())
    c, m = b.customers, b.messages
    mask = field_mask_pb2.FieldMask(paths=["name"])
    probes: list[tuple[str, Callable[[str], Awaitable[object]]]] = [
        (customer_id, lambda i: c.GetCustomer(cus.GetCustomerRequest(customer_id=i))),
        (customer_id, lambda i: c.GetCustomerContext(cus.GetCustomerContextRequest(customer_id=i))),
        (customer_id, lambda i: c.GetCustomerHistory(cus.GetCustomerHistoryRequest(customer_id=i))),
        (
            customer_id,
            lambda i: c.UpdateCustomer(
                cus.UpdateCustomerRequest(customer=customer_pb2.Customer(id=i, name="x"), update_mask=mask)
            ),
        ),
        (message_id, lambda i: m.GetMessage(ms.GetMessageRequest(message_id=i))),
        (message_id, lambda i: m.RetryMessage(ms.RetryMessageRequest(message_id=i))),
        (conversation_id, lambda i: m.ListMessages(ms.ListMessagesRequest(conversation_id=i))),
        (conversation_id, lambda i: record(b, i)),
    ]
    for own_id, probe in probes:
        await not_found_like_a_missing_id(probe, own_id, missing)
    for lookup in (
        c.LookupCustomer(cus.LookupCustomerRequest(whatsapp_id="447400123456")),
        c.LookupCustomer(cus.LookupCustomerRequest(phone_number="+447400123456")),
        c.GetCustomerContext(cus.GetCustomerContextRequest(whatsapp_id="447400123456")),
        m.LookupMessage(ms.LookupMessageRequest(whatsapp_message_id="wamid.shared")),
    ):
        await expect(lookup, NOT_FOUND)
    assert not (await c.SearchCustomers(cus.SearchCustomersRequest(name_query="alice"))).customers
    assert not (await c.SearchCustomers(cus.SearchCustomersRequest(phone_prefix="+44"))).customers
    # B's report for A's message id is B's own business: parked in B, A's message untouched.
    assert (await status(b, report(pb.MESSAGE_STATUS_DELIVERED, 2, "wamid.shared"))).parked
    unchanged = (await a.messages.GetMessage(ms.GetMessageRequest(message_id=message_id))).message
    assert not unchanged.HasField("deliver_time")


async def test_equal_provider_ids_in_two_tenants_are_separate(clients: Clients) -> None:
    a, b, customer_id, message_id = await two_tenants(clients)
    in_b = await inbound(b, "447400123456", "wamid.shared", customer_name="Bob")
    assert in_b.customer_created and in_b.message_created
    assert in_b.context.customer.id != customer_id and in_b.message.id != message_id
    assert in_b.message.status == pb.MESSAGE_STATUS_SENT  # A's READ report stays A's
    again_a = (await upsert(a, "447400123456")).customer
    assert again_a.name == "Alice Anders"


async def test_the_service_role_sees_nothing_without_a_tenant(clients: Clients, app_conn: SyncConn) -> None:
    a, b, _, _ = await two_tenants(clients)
    await inbound(b, "447700900123", customer_name="Bea")
    for table in TABLES:
        assert count(app_conn, table) == 0, table
        assert count(app_conn, table, a.tenant_id) > 0, table
    for table in TABLES:
        foreign = rows(app_conn, b.tenant_id, f"SELECT count(*) FROM {table} WHERE tenant_id <> %s", (b.tenant_id,))
        assert foreign == [(0,)], table
