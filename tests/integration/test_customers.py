"""CustomerService end to end: phone numbers, search, updates, context and history, through the generated stubs.

The helpers at the top are shared by the other customer, message and integration test modules.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2, struct_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_pb2
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import integration_service_pb2 as ins
from tests.integration.conftest import Client, Clients
from tests.integration.errors import expect
from tests.integration.test_conversations import CLOSED, move
from tests.unit.test_phones import COUNTRIES

BAD = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
SyncConn = psycopg.Connection[tuple[Any, ...]]


def new_wa_id() -> str:
    """A random valid-looking WhatsApp id (a UK mobile number without the +)."""
    return "4474" + str(uuid.uuid4().int)[:8]


async def upsert(client: Client, whatsapp_id: str, **fields: Any) -> cus.UpsertCustomerResponse:
    customer = customer_pb2.Customer(whatsapp_id=whatsapp_id, **fields)
    return await client.customers.UpsertCustomer(cus.UpsertCustomerRequest(customer=customer))


async def lookup_phone(client: Client, phone_number: str) -> customer_pb2.Customer:
    return (await client.customers.LookupCustomer(cus.LookupCustomerRequest(phone_number=phone_number))).customer


async def inbound(
    client: Client, whatsapp_id: str, message_id: str | None = None, **fields: Any
) -> ins.ResolveInboundResponse:
    """ResolveInbound for one inbound message (a fresh WhatsApp message id unless given)."""
    request = ins.ResolveInboundRequest(
        whatsapp_id=whatsapp_id, whatsapp_message_id=message_id or "wamid." + uuid.uuid4().hex, **fields
    )
    return await client.integration.ResolveInbound(request)


def timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def struct(**values: Any) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def violation(exc: grpc.aio.AioRpcError) -> tuple[str, str]:
    """The (field, description) of the first BadRequest field violation."""
    status = rpc_status.from_call(exc)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return bad.field_violations[0].field, bad.field_violations[0].description
    raise AssertionError("no BadRequest detail")


def rows(conn: SyncConn, tenant_id: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Rows of `query` run as the service role inside `tenant_id`'s scope."""
    with conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        return conn.execute(query.encode(), params).fetchall()


@pytest.mark.parametrize(("region", "e164", "spellings"), COUNTRIES, ids=[c[1] for c in COUNTRIES])
async def test_phone_numbers_of_many_countries_normalise_to_one_e164(
    clients: Clients, region: str, e164: str, spellings: list[str]
) -> None:
    client = await clients.new_tenant(region=region)
    international, zero_zero, national, messy = spellings
    created = await upsert(client, e164.removeprefix("+"), phone_number=messy)
    assert created.created and created.customer.phone_number == e164
    for spelling in spellings:
        assert (await lookup_phone(client, spelling)).id == created.customer.id, spelling
    again = await upsert(client, e164.removeprefix("+"), phone_number=national)
    assert not again.created and again.customer.etag == created.customer.etag  # the same number: nothing changed
    assert (await upsert(client, "x" + e164, phone_number=international)).customer.phone_number == e164
    assert (await upsert(client, "y" + e164, phone_number=zero_zero)).customer.phone_number == e164


async def test_a_gb_tenant_finds_one_customer_by_every_spelling(tenant: Client) -> None:
    created = (await upsert(tenant, "442079460958", name="Ada")).customer
    assert created.phone_number == "+442079460958"  # from the WhatsApp id when no number is given
    for spelling in ("+44 20 7946 0958", "0044 20 7946 0958", "020 7946 0958", "tel:+44-20-7946-0958"):
        assert (await lookup_phone(tenant, spelling)).id == created.id
    by_wa = await tenant.customers.LookupCustomer(cus.LookupCustomerRequest(whatsapp_id="442079460958"))
    assert by_wa.customer == created


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+44 20 79", "missing its area code"),
        ("+999 1234 5678", "unknown country code"),
        ("+1 200 555 0123", "not a valid number for its region"),
        ("call me", "not a phone number"),
        ("0" * 70, "too long"),
    ],
)
async def test_an_invalid_number_is_refused_with_its_reason_and_nothing_written(
    tenant: Client, raw: str, reason: str
) -> None:
    wa = new_wa_id()
    refused = await expect(upsert(tenant, wa, phone_number=raw, name="Eve"), BAD, "customer.phone_number")
    assert violation(refused) == ("customer.phone_number", reason)
    assert raw not in (refused.details() or "")
    await expect(tenant.customers.LookupCustomer(cus.LookupCustomerRequest(whatsapp_id=wa)), NOT_FOUND)
    lookup = tenant.customers.LookupCustomer(cus.LookupCustomerRequest(phone_number=raw))
    assert violation(await expect(lookup, BAD, "phone_number")) == ("phone_number", reason)


async def test_national_numbers_are_read_with_the_tenants_region(clients: Clients) -> None:
    us, fr = await clients.new_tenant(region="US"), await clients.new_tenant(region="FR")
    assert (await upsert(us, new_wa_id(), phone_number="(201) 555-0123")).customer.phone_number == "+12015550123"
    assert (await upsert(fr, new_wa_id(), phone_number="06 12 34 56 78")).customer.phone_number == "+33612345678"
    await expect(lookup_phone(fr, "(201) 555-0123"), BAD, "phone_number")


async def test_upsert_keeps_what_it_is_not_given_and_reports_changes(tenant: Client, app_conn: SyncConn) -> None:
    wa = new_wa_id()
    first = await upsert(tenant, wa, name="Zoë", metadata=struct(crm="42"), preferences=struct(lang="en"))
    assert first.created and first.customer.etag == "1"
    same = await upsert(tenant, wa)
    assert not same.created and same.customer == first.customer
    renamed = (await upsert(tenant, wa, name="Zoë Åström", profile_picture_url="https://cdn.test/z.jpg")).customer
    assert renamed.name == "Zoë Åström" and renamed.metadata == first.customer.metadata
    assert renamed.preferences == first.customer.preferences and renamed.etag != first.customer.etag
    events = rows(app_conn, tenant.tenant_id, "SELECT type, payload::text FROM events ORDER BY seq")
    assert [e[0] for e in events] == ["customer.created", "customer.updated"]
    assert all("Zo" not in payload and wa not in payload for _, payload in events)


async def test_search_by_name_finds_word_starts_whatever_the_case_and_accents_and_pages(tenant: Client) -> None:
    names = ["Zoë Åström", "ZOE ASTROM-SMITH", "Chloé Dupont", "Bob", *(f"Test Person {i}" for i in range(7))]
    ids = {name: (await upsert(tenant, new_wa_id(), name=name)).customer.id for name in names}

    async def search(query: str, page_size: int = 0, token: str = "") -> cus.SearchCustomersResponse:
        request = cus.SearchCustomersRequest(name_query=query, page_size=page_size, page_token=token)
        return await tenant.customers.SearchCustomers(request)

    found = await search("zoe astr")
    assert {c.id for c in found.customers} == {ids["Zoë Åström"], ids["ZOE ASTROM-SMITH"]}
    assert {c.name for c in (await search("ASTRÖM")).customers} == {"Zoë Åström", "ZOE ASTROM-SMITH"}
    assert [c.name for c in (await search("smi")).customers] == ["ZOE ASTROM-SMITH"]
    assert [c.name for c in (await search("dupont")).customers] == ["Chloé Dupont"]
    assert not (await search("xyz")).customers
    assert not (await search("upont")).customers  # a word's start, not its middle
    pages, token = [], ""
    while True:
        page = await search("person", page_size=3, token=token)
        pages.append([c.id for c in page.customers])
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert {i for p in pages for i in p} == {ids[f"Test Person {i}"] for i in range(7)}
    first = await search("person", page_size=3)
    await expect(search("zoe", page_size=3, token=first.next_page_token), BAD, "page_token")


async def test_search_by_phone_prefix(clients: Clients) -> None:
    client = await clients.new_tenant(region="GB")
    london = [(await upsert(client, new_wa_id(), phone_number=f"020 7946 0{n:03d}")).customer.id for n in range(5)]
    await upsert(client, new_wa_id(), phone_number="+1 201 555 0123")
    for prefix in ("+4420", "0044 20", "+44 (20) 7946"):
        request = cus.SearchCustomersRequest(phone_prefix=prefix, page_size=2)
        seen: list[str] = []
        while True:
            page = await client.customers.SearchCustomers(request)
            seen.extend(c.id for c in page.customers)
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        assert sorted(seen) == sorted(london), prefix
    refused = await expect(client.customers.SearchCustomers(cus.SearchCustomersRequest(phone_prefix="4420")), BAD)
    assert violation(refused)[0] == "phone_prefix"


def test_searches_use_their_indexes(database_url: str, app_conn: SyncConn) -> None:
    """At many rows a scan would be slow: with 50,000 customers the planner answers both searches from an index,
    under row-level security (which lets only LEAKPROOF conditions into an index scan)."""
    tenant_id = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute("INSERT INTO tenants (id, display_name) VALUES (%s, 'big')", (tenant_id,))
        owner.execute(
            "INSERT INTO customers (tenant_id, id, whatsapp_id, phone_number, name, name_search)"
            " SELECT %s, gen_random_uuid(), n::text, '+4474' || (10000000 + n)::text, 'Name ' || md5(n::text),"
            " 'name ' || md5(n::text) FROM generate_series(1, 50000) AS n",
            (tenant_id,),
        )
        owner.execute("VACUUM ANALYZE customers")  # what autovacuum does after a bulk load (GIN pending list)
    queries = {
        "customer_name_terms_pkey": "SELECT c.* FROM customers c WHERE c.tenant_id = %(t)s AND c.id IN"
        " (SELECT customer_id FROM customer_name_terms t WHERE t.tenant_id = %(t)s AND t.term >= 'c4ca42'"
        " AND t.term < 'c4ca43') ORDER BY name_search, id LIMIT 51",
        "customers_phone": "SELECT * FROM customers WHERE tenant_id = %(t)s AND phone_number >= '+44741000'"
        " AND phone_number < '+44741001' ORDER BY phone_number, id LIMIT 51",
    }
    for index, query in queries.items():
        plan = "\n".join(row[0] for row in rows(app_conn, tenant_id, "EXPLAIN " + query, {"t": tenant_id}))
        assert index in plan and "Seq Scan" not in plan, plan


async def test_update_customer_with_a_mask_and_an_etag(tenant: Client) -> None:
    created = (await upsert(tenant, new_wa_id(), name="Ann", metadata=struct(a=1))).customer

    async def update(customer: customer_pb2.Customer, *paths: str) -> customer_pb2.Customer:
        request = cus.UpdateCustomerRequest(customer=customer, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return (await tenant.customers.UpdateCustomer(request)).customer

    changed = await update(
        customer_pb2.Customer(id=created.id, name="Anne", phone_number="07400 123456", etag=created.etag),
        "name",
        "phone_number",
    )
    assert (changed.name, changed.phone_number, changed.metadata) == ("Anne", "+447400123456", created.metadata)
    await expect(
        update(customer_pb2.Customer(id=created.id, name="x", etag=created.etag), "name"), grpc.StatusCode.ABORTED
    )
    cleared = await update(
        customer_pb2.Customer(id=created.id, preferences=struct(lang="pt")), "preferences", "metadata"
    )
    assert dict(cleared.preferences) == {"lang": "pt"} and not cleared.metadata.fields
    unknown = customer_pb2.Customer(id=str(uuid.uuid4()), name="x")
    await expect(update(unknown, "name"), NOT_FOUND)
    await expect(update(customer_pb2.Customer(id=created.id), "whatsapp_id"), BAD, "update_mask")
    await expect(update(customer_pb2.Customer(id=created.id)), BAD, "update_mask")
    huge = customer_pb2.Customer(id=created.id, metadata=struct(blob="x" * 17_000))
    await expect(update(huge, "metadata"), BAD, "customer.metadata")
    bad_phone = customer_pb2.Customer(id=created.id, phone_number="12")
    await expect(update(bad_phone, "phone_number"), BAD, "customer.phone_number")
    assert (await tenant.customers.GetCustomer(cus.GetCustomerRequest(customer_id=created.id))).customer == cleared


async def test_context_has_profile_open_conversation_window_and_last_messages(tenant: Client) -> None:
    wa = new_wa_id()
    sent = [await inbound(tenant, wa, content=f"message {i}", customer_name="Kim") for i in range(3)]
    customer_id = sent[0].context.customer.id

    async def context(**key: Any) -> customer_pb2.CustomerContext:
        request = cus.GetCustomerContextRequest(recent_message_limit=2, **key)
        return (await tenant.customers.GetCustomerContext(request)).context

    by_id, by_wa = await context(customer_id=customer_id), await context(whatsapp_id=wa)
    assert by_id == by_wa
    assert by_id.customer.name == "Kim" and by_id.reply_window_open
    assert by_id.open_conversation.id == sent[0].conversation.id and by_id.open_conversation.reply_window_open
    assert [m.content for m in by_id.recent_messages] == ["message 1", "message 2"]
    assert [c.id for c in by_id.recent_conversations] == [sent[0].conversation.id]
    await move(tenant, sent[0].conversation.id, CLOSED)
    closed = await context(customer_id=customer_id)
    assert not closed.HasField("open_conversation") and not closed.reply_window_open
    reopened = await inbound(tenant, wa, content="back again")
    assert reopened.conversation_created and reopened.conversation.id != sent[0].conversation.id
    latest = await context(whatsapp_id=wa)
    assert [c.id for c in latest.recent_conversations] == [reopened.conversation.id, sent[0].conversation.id]
    assert [m.content for m in latest.recent_messages] == ["back again"]


async def test_history_lists_conversations_newest_first_with_their_agents(tenant: Client) -> None:
    wa = new_wa_id()
    first = await inbound(tenant, wa)
    agents = [str(uuid.uuid4()) for _ in range(2)]
    for agent in agents:
        transfer = cs.TransferConversationRequest(conversation_id=first.conversation.id, agent_id=agent, reason="r")
        await tenant.conversations.TransferConversation(transfer)
    await move(tenant, first.conversation.id, CLOSED)
    second = await inbound(tenant, wa)
    customer_id = first.context.customer.id

    request = cus.GetCustomerHistoryRequest(customer_id=customer_id, page_size=1)
    page_one = await tenant.customers.GetCustomerHistory(request)
    request.page_token = page_one.next_page_token
    page_two = await tenant.customers.GetCustomerHistory(request)
    assert not page_two.next_page_token
    entries = [*page_one.entries, *page_two.entries]
    assert [e.conversation.id for e in entries] == [second.conversation.id, first.conversation.id]
    assert entries[1].conversation.state == CLOSED
    assert [(a.from_agent_id, a.to_agent_id) for a in entries[1].assignments] == [
        ("", agents[0]),
        (agents[0], agents[1]),
    ]
    assert not entries[0].assignments
    await expect(
        tenant.customers.GetCustomerHistory(cus.GetCustomerHistoryRequest(customer_id=str(uuid.uuid4()))), NOT_FOUND
    )


async def test_bad_input_names_the_field(tenant: Client) -> None:
    c = tenant.customers
    cases: list[tuple[Any, str]] = [
        (c.UpsertCustomer(cus.UpsertCustomerRequest()), "customer.whatsapp_id"),
        (upsert(tenant, "1" * 65), "customer.whatsapp_id"),
        (upsert(tenant, new_wa_id(), name="n" * 201), "customer.name"),
        (upsert(tenant, new_wa_id(), profile_picture_url="u" * 2049), "customer.profile_picture_url"),
        (upsert(tenant, new_wa_id(), preferences=struct(x="y" * 17_000)), "customer.preferences"),
        (c.GetCustomer(cus.GetCustomerRequest(customer_id="nope")), "customer_id"),
        (c.LookupCustomer(cus.LookupCustomerRequest()), "whatsapp_id"),
        (c.LookupCustomer(cus.LookupCustomerRequest(whatsapp_id=" ")), "whatsapp_id"),
        (c.SearchCustomers(cus.SearchCustomersRequest()), "name_query"),
        (c.SearchCustomers(cus.SearchCustomersRequest(name_query="a")), "name_query"),
        (c.SearchCustomers(cus.SearchCustomersRequest(name_query="ab", phone_prefix="+44")), "phone_prefix"),
        (c.SearchCustomers(cus.SearchCustomersRequest(name_query="ab", page_size=-1)), "page_size"),
        (c.SearchCustomers(cus.SearchCustomersRequest(name_query="ab", page_token="garbage")), "page_token"),
        (c.UpdateCustomer(cus.UpdateCustomerRequest()), "customer.id"),
        (c.GetCustomerContext(cus.GetCustomerContextRequest()), "customer_id"),
        (c.GetCustomerContext(cus.GetCustomerContextRequest(customer_id="1")), "customer_id"),
        (
            c.GetCustomerContext(cus.GetCustomerContextRequest(whatsapp_id="1", recent_message_limit=-1)),
            "recent_message_limit",
        ),
        (c.GetCustomerHistory(cus.GetCustomerHistoryRequest(customer_id="")), "customer_id"),
    ]
    for call, field in cases:
        await expect(call, BAD, field)
    await expect(c.GetCustomerContext(cus.GetCustomerContextRequest(whatsapp_id="unknown")), NOT_FOUND)
