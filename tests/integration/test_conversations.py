"""ConversationService end to end: through the generated stubs, against the in-process server and PostgreSQL.

The helpers at the top are shared by the other test_conversation*.py modules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import grpc
import psycopg
from google.protobuf import field_mask_pb2, struct_pb2
from psycopg import sql

from statemgr.domain import customers
from statemgr.v1 import conversation_pb2 as pb
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration.conftest import Client
from tests.integration.errors import error_info, expect

ACTIVE, WAITING, ERROR, CLOSED = (
    pb.CONVERSATION_STATE_ACTIVE,
    pb.CONVERSATION_STATE_WAITING,
    pb.CONVERSATION_STATE_ERROR,
    pb.CONVERSATION_STATE_CLOSED,
)
STATES = (ACTIVE, WAITING, ERROR, CLOSED)
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
CONVERSATION_TABLES = ("conversations", "conversation_state_transitions", "conversation_assignments")


def wa_id() -> str:
    return "wa-" + uuid.uuid4().hex


async def create(
    client: Client, whatsapp_id: str | None = None, request_id: str = "", **fields: Any
) -> pb.Conversation:
    conversation = pb.Conversation(whatsapp_conversation_id=whatsapp_id or wa_id(), **fields)
    request = cs.CreateConversationRequest(conversation=conversation, request_id=request_id)
    return (await client.conversations.CreateConversation(request)).conversation


async def move(client: Client, conversation_id: str, state: int, reason: str = "", etag: str = "") -> pb.Conversation:
    request = cs.TransitionConversationRequest(conversation_id=conversation_id, state=state, reason=reason, etag=etag)
    return (await client.conversations.TransitionConversation(request)).conversation


async def get(client: Client, conversation_id: str) -> pb.Conversation:
    request = cs.GetConversationRequest(conversation_id=conversation_id)
    return (await client.conversations.GetConversation(request)).conversation


async def update(client: Client, conversation: pb.Conversation, *paths: str) -> pb.Conversation:
    request = cs.UpdateConversationRequest(conversation=conversation, update_mask=field_mask_pb2.FieldMask(paths=paths))
    return (await client.conversations.UpdateConversation(request)).conversation


async def history(client: Client, conversation_id: str, page_size: int = 0) -> list[pb.HistoryEntry]:
    """Every entry, following next_page_token."""
    entries: list[pb.HistoryEntry] = []
    token = ""
    while True:
        request = cs.GetConversationHistoryRequest(
            conversation_id=conversation_id, page_size=page_size, page_token=token
        )
        page = await client.conversations.GetConversationHistory(request)
        entries.extend(page.entries)
        token = page.next_page_token
        if not token:
            return entries


def kinds(entries: list[pb.HistoryEntry]) -> list[str]:
    return [str(entry.WhichOneof("kind")) for entry in entries]


def struct(**values: Any) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


async def owner_query(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Runs `query` as the database owner (a superuser: row-level security does not apply)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


async def count_rows(database_url: str, table: str, tenant_id: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(sql.Identifier(table))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row = await (await conn.execute(query, (tenant_id,))).fetchone()
    assert row is not None
    return int(row[0])


async def event_types(database_url: str, tenant_id: str, conversation_id: str | None = None) -> list[str]:
    rows = await owner_query(
        database_url,
        "SELECT type FROM events WHERE tenant_id = %s AND (%s::uuid IS NULL OR conversation_id = %s::uuid)"
        " ORDER BY seq",
        tenant_id,
        conversation_id,
        conversation_id,
    )
    return [str(row[0]) for row in rows]


async def insert_customer(database_url: str, tenant_id: str, name: str = "", phone: str | None = None) -> str:
    """A customer row written directly (CustomerService is another module's); returns its id."""
    customer_id = str(uuid.uuid4())
    await owner_query(
        database_url,
        "INSERT INTO customers (tenant_id, id, whatsapp_id, phone_number, name, name_search)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        tenant_id,
        customer_id,
        uuid.uuid4().hex[:20],
        phone,
        name,
        customers.search_key(name),
    )
    return customer_id


# --- lifecycle and history ---


async def test_lifecycle_active_waiting_active_closed_with_history(tenant: Client, database_url: str) -> None:
    agent = str(uuid.uuid4())
    created = await create(tenant, genesys_conversation_id="g-1", agent_id=agent, metadata=struct(tier="gold"))
    assert created.state == ACTIVE and created.agent_id == agent and created.metadata["tier"] == "gold"
    assert created.etag and not created.HasField("close_time") and not created.reply_window_open

    waiting = await move(tenant, created.id, WAITING, "customer is typing")
    active = await move(tenant, created.id, ACTIVE, "agent replied")
    closed = (
        await tenant.conversations.CloseConversation(
            cs.CloseConversationRequest(conversation_id=created.id, reason="done")
        )
    ).conversation
    assert [waiting.state, active.state, closed.state] == [WAITING, ACTIVE, CLOSED]
    assert len({created.etag, waiting.etag, active.etag, closed.etag}) == 4
    assert closed.HasField("close_time") and closed.last_activity_time.ToDatetime() >= created.create_time.ToDatetime()
    assert await get(tenant, created.id) == closed

    entries = await history(tenant, created.id)
    assert kinds(entries) == ["created", "genesys_mapping_change", "assignment"] + ["state_change"] * 3
    assert entries[0].created.id == created.id and entries[0].created.state == ACTIVE
    assert entries[1].genesys_mapping_change == pb.GenesysMappingChange(to_genesys_conversation_id="g-1")
    assert entries[2].assignment.to_agent_id == agent and not entries[2].assignment.from_agent_id
    moves = [(e.state_change.from_state, e.state_change.to_state, e.state_change.reason) for e in entries[3:]]
    assert moves == [
        (ACTIVE, WAITING, "customer is typing"),
        (WAITING, ACTIVE, "agent replied"),
        (ACTIVE, CLOSED, "done"),
    ]
    times = [entry.time.ToDatetime() for entry in entries]
    assert times == sorted(times)
    assert await event_types(database_url, tenant.tenant_id, created.id) == [
        "conversation.created",
        "conversation.state_changed",
        "conversation.state_changed",
        "conversation.closed",
    ]
    payloads = await owner_query(
        database_url, "SELECT payload::text FROM events WHERE conversation_id = %s", created.id
    )
    assert payloads and not any("gold" in row[0] for row in payloads)  # events carry ids and states, not metadata


async def test_every_illegal_move_is_failed_precondition(tenant: Client) -> None:
    paths = {ACTIVE: [], WAITING: [WAITING], ERROR: [ERROR]}
    illegal = {ACTIVE: [], WAITING: [], ERROR: [WAITING]}  # the state it is in: OK, see the next test
    for state, path in paths.items():
        conversation = await create(tenant)
        for step in path:
            conversation = await move(tenant, conversation.id, step)
        for target in illegal[state]:
            exc = await expect(move(tenant, conversation.id, target), FAILED_PRECONDITION)
            info = error_info(exc)
            assert info is not None and info.reason == "ILLEGAL_STATE_TRANSITION"
        assert await get(tenant, conversation.id) == conversation  # nothing changed, not even the etag


async def test_a_repeated_transition_answers_ok_and_changes_nothing(tenant: Client, database_url: str) -> None:
    """A transformer resending "agent joined" (or retrying a call whose answer it lost) must not see an error."""
    for state in (ACTIVE, WAITING, ERROR, CLOSED):
        conversation = await create(tenant)
        stale_etag = conversation.etag
        if state != ACTIVE:
            conversation = await move(tenant, conversation.id, state, "first time")
        events_before = await event_types(database_url, tenant.tenant_id, conversation.id)
        history_before = await tenant.conversations.GetConversationHistory(
            cs.GetConversationHistoryRequest(conversation_id=conversation.id)
        )

        again = await move(tenant, conversation.id, state, "resent")
        assert again == conversation, "the answer is the conversation as it was: same state, same etag"
        assert await move(tenant, conversation.id, state, "resent", etag=conversation.etag) == conversation
        if state != ACTIVE:  # an etag is checked first all the same: "only if nothing changed since I read"
            await expect(move(tenant, conversation.id, state, "resent", etag=stale_etag), grpc.StatusCode.ABORTED)
        if state == CLOSED:
            close = cs.CloseConversationRequest(conversation_id=conversation.id, reason="resent")
            assert (await tenant.conversations.CloseConversation(close)).conversation == conversation
        assert await get(tenant, conversation.id) == conversation
        assert await event_types(database_url, tenant.tenant_id, conversation.id) == events_before, "no new event"
        history = await tenant.conversations.GetConversationHistory(
            cs.GetConversationHistoryRequest(conversation_id=conversation.id)
        )
        assert history == history_before


async def test_a_closed_conversation_stays_closed(tenant: Client, database_url: str) -> None:
    conversation = await create(tenant)
    closed = await move(tenant, conversation.id, ERROR)
    closed = await move(tenant, conversation.id, CLOSED, "gave up")
    events_before = await event_types(database_url, tenant.tenant_id, conversation.id)
    for target in (ACTIVE, WAITING, ERROR):  # closing again is a repeat: OK (test above)
        exc = await expect(move(tenant, conversation.id, target), FAILED_PRECONDITION)
        assert (info := error_info(exc)) is not None and info.reason == "CONVERSATION_CLOSED"
    transfer = cs.TransferConversationRequest(conversation_id=conversation.id, agent_id=str(uuid.uuid4()))
    await expect(tenant.conversations.TransferConversation(transfer), FAILED_PRECONDITION)
    await expect(
        update(tenant, pb.Conversation(id=conversation.id, metadata=struct(a=1)), "metadata"), FAILED_PRECONDITION
    )
    assert await get(tenant, conversation.id) == closed
    assert await event_types(database_url, tenant.tenant_id, conversation.id) == events_before


async def test_history_pages_follow_one_another(tenant: Client) -> None:
    conversation = await create(tenant)
    for _ in range(10):
        await move(tenant, conversation.id, WAITING)
        await move(tenant, conversation.id, ACTIVE)
    everything = await history(tenant, conversation.id, page_size=1000)
    assert len(everything) == 21
    assert await history(tenant, conversation.id, page_size=4) == everything
    first = await tenant.conversations.GetConversationHistory(
        cs.GetConversationHistoryRequest(conversation_id=conversation.id, page_size=21)
    )
    assert len(first.entries) == 21 and first.next_page_token == ""


# --- create: idempotency and the one-open rule ---


async def test_the_same_request_id_returns_the_same_conversation(tenant: Client, database_url: str) -> None:
    request_id, whatsapp_id = str(uuid.uuid4()), wa_id()
    first = await create(tenant, whatsapp_id, request_id)
    again = await create(tenant, whatsapp_id, request_id)
    assert again == first
    racing = await asyncio.gather(*(create(tenant, whatsapp_id, request_id) for _ in range(10)))
    assert {c.id for c in racing} == {first.id}
    assert await count_rows(database_url, "conversations", tenant.tenant_id) == 1
    assert await event_types(database_url, tenant.tenant_id) == ["conversation.created"]
    await expect(create(tenant, wa_id(), request_id), grpc.StatusCode.INVALID_ARGUMENT, "request_id")


async def test_a_second_open_conversation_is_already_exists_naming_the_first(tenant: Client) -> None:
    whatsapp_id = wa_id()
    first = await create(tenant, whatsapp_id)
    exc = await expect(create(tenant, whatsapp_id), grpc.StatusCode.ALREADY_EXISTS)
    assert first.id in (exc.details() or "")
    assert (info := error_info(exc)) is not None and info.metadata["existing_id"] == first.id

    await move(tenant, first.id, CLOSED)
    second = await create(tenant, whatsapp_id)  # closed is final: a new message opens a new conversation
    assert second.id != first.id
    lookup = cs.LookupConversationRequest(whatsapp_conversation_id=whatsapp_id)
    assert (await tenant.conversations.LookupConversation(lookup)).conversation.id == second.id
    await move(tenant, second.id, CLOSED)
    assert (await tenant.conversations.LookupConversation(lookup)).conversation.id == second.id  # the latest


async def test_fifty_concurrent_creates_for_one_whatsapp_id_make_one_conversation(
    tenant: Client, database_url: str
) -> None:
    whatsapp_id = wa_id()
    results = await asyncio.gather(*(create(tenant, whatsapp_id) for _ in range(50)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, pb.Conversation)]
    losers = [r for r in results if not isinstance(r, pb.Conversation)]
    assert len(winners) == 1, [r for r in losers if not isinstance(r, grpc.aio.AioRpcError)]
    assert all(isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.ALREADY_EXISTS for r in losers)
    assert all(winners[0].id in (r.details() or "") for r in losers if isinstance(r, grpc.aio.AioRpcError))
    assert await count_rows(database_url, "conversations", tenant.tenant_id) == 1
    assert await event_types(database_url, tenant.tenant_id) == ["conversation.created"]


async def test_fifty_concurrent_creates_with_one_request_id_return_one_conversation(
    tenant: Client, database_url: str
) -> None:
    whatsapp_id, request_id = wa_id(), str(uuid.uuid4())
    results = await asyncio.gather(*(create(tenant, whatsapp_id, request_id) for _ in range(50)))
    assert len({c.id for c in results}) == 1
    assert await count_rows(database_url, "conversations", tenant.tenant_id) == 1


# --- Genesys mapping, update, etag ---


async def test_genesys_ids_current_and_superseded_find_the_conversation(tenant: Client, database_url: str) -> None:
    conversation = await create(tenant, genesys_conversation_id="g-1")
    conversation = await update(
        tenant, pb.Conversation(id=conversation.id, genesys_conversation_id="g-2"), "genesys_conversation_id"
    )
    conversation = await update(
        tenant, pb.Conversation(id=conversation.id, genesys_conversation_id="g-3"), "genesys_conversation_id"
    )
    assert conversation.genesys_conversation_id == "g-3"
    assert list(conversation.previous_genesys_conversation_ids) == ["g-1", "g-2"]
    for genesys_id in ("g-1", "g-2", "g-3"):
        found = await tenant.conversations.LookupConversation(
            cs.LookupConversationRequest(genesys_conversation_id=genesys_id)
        )
        assert found.conversation == conversation
    changes = [
        e.genesys_mapping_change for e in await history(tenant, conversation.id) if e.HasField("genesys_mapping_change")
    ]
    assert [(c.from_genesys_conversation_id, c.to_genesys_conversation_id) for c in changes] == [
        ("", "g-1"),
        ("g-1", "g-2"),
        ("g-2", "g-3"),
    ]
    assert (await event_types(database_url, tenant.tenant_id, conversation.id)).count(
        "conversation.genesys_mapping_changed"
    ) == 2
    missing = cs.LookupConversationRequest(genesys_conversation_id="g-never")
    await expect(tenant.conversations.LookupConversation(missing), grpc.StatusCode.NOT_FOUND)


async def test_one_open_conversation_per_genesys_id(tenant: Client) -> None:
    first = await create(tenant, genesys_conversation_id="g-shared")
    exc = await expect(create(tenant, genesys_conversation_id="g-shared"), grpc.StatusCode.ALREADY_EXISTS)
    assert (info := error_info(exc)) is not None and info.metadata["existing_id"] == first.id
    other = await create(tenant)
    mapping = pb.Conversation(id=other.id, genesys_conversation_id="g-shared")
    await expect(update(tenant, mapping, "genesys_conversation_id"), grpc.StatusCode.ALREADY_EXISTS)
    await move(tenant, first.id, CLOSED)
    taken = await update(tenant, mapping, "genesys_conversation_id")
    lookup = cs.LookupConversationRequest(genesys_conversation_id="g-shared")
    assert (await tenant.conversations.LookupConversation(lookup)).conversation.id == taken.id  # the open one


async def test_update_metadata_with_etags(tenant: Client, database_url: str) -> None:
    conversation = await create(tenant, metadata=struct(a=1, b="x"))
    updated = await update(
        tenant, pb.Conversation(id=conversation.id, etag=conversation.etag, metadata=struct(c=True)), "metadata"
    )
    assert dict(updated.metadata) == {"c": True} and updated.etag != conversation.etag
    stale = pb.Conversation(id=conversation.id, etag=conversation.etag, metadata=struct(d=1))
    await expect(update(tenant, stale, "metadata"), grpc.StatusCode.ABORTED)
    same = await update(tenant, pb.Conversation(id=conversation.id, metadata=struct(c=True)), "metadata")
    assert same == updated  # nothing changed, nothing written
    assert await get(tenant, conversation.id) == updated
    assert await event_types(database_url, tenant.tenant_id, conversation.id) == ["conversation.created"]


async def test_transition_with_a_stale_etag_is_aborted(tenant: Client) -> None:
    conversation = await create(tenant)
    waiting = await move(tenant, conversation.id, WAITING, etag=conversation.etag)
    await expect(move(tenant, conversation.id, ACTIVE, etag=conversation.etag), grpc.StatusCode.ABORTED)
    assert await get(tenant, conversation.id) == waiting
    assert (await move(tenant, conversation.id, ACTIVE, etag=waiting.etag)).state == ACTIVE


async def test_concurrent_writes_to_one_conversation_lose_cleanly(tenant: Client, database_url: str) -> None:
    conversation = await create(tenant)
    same_etag = [move(tenant, conversation.id, target, etag=conversation.etag) for target in (WAITING, ERROR) * 5]
    results = await asyncio.gather(*same_etag, return_exceptions=True)
    codes = sorted(r.code().name if isinstance(r, grpc.aio.AioRpcError) else "OK" for r in results)
    assert codes == ["ABORTED"] * 9 + ["OK"]
    closes = [
        tenant.conversations.CloseConversation(cs.CloseConversationRequest(conversation_id=conversation.id))
        for _ in range(10)
    ]
    results = await asyncio.gather(*closes, return_exceptions=True)
    codes = sorted(r.code().name if isinstance(r, grpc.aio.AioRpcError) else "OK" for r in results)
    assert codes == ["OK"] * 10  # one closes it, the nine others find it closed: a repeat, answered OK
    assert (await event_types(database_url, tenant.tenant_id, conversation.id)).count("conversation.closed") == 1


# --- transfer ---


async def test_transfers_keep_the_assignment_history(tenant: Client, database_url: str) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    conversation = await create(tenant)
    for agent, reason in ((first, "first available"), (second, "escalated")):
        request = cs.TransferConversationRequest(conversation_id=conversation.id, agent_id=agent, reason=reason)
        conversation = (await tenant.conversations.TransferConversation(request)).conversation
    assert conversation.agent_id == second
    again = cs.TransferConversationRequest(conversation_id=conversation.id, agent_id=second, reason="retry")
    assert (await tenant.conversations.TransferConversation(again)).conversation == conversation  # no-op
    assignments = [e.assignment for e in await history(tenant, conversation.id) if e.HasField("assignment")]
    assert [(a.from_agent_id, a.to_agent_id, a.reason) for a in assignments] == [
        ("", first, "first available"),
        (first, second, "escalated"),
    ]
    assert all(a.HasField("assign_time") for a in assignments)
    assert await event_types(database_url, tenant.tenant_id, conversation.id) == [
        "conversation.created",
        "conversation.transferred",
        "conversation.transferred",
    ]
    rows = await owner_query(
        database_url, "SELECT payload FROM events WHERE conversation_id = %s ORDER BY seq DESC LIMIT 1", conversation.id
    )
    assert rows[0][0]["agent_id"] == second and rows[0][0]["conversation_state"] == "active"


# --- reading: list, search, reply window ---


async def test_list_filters(tenant: Client, database_url: str) -> None:
    agent, customer = str(uuid.uuid4()), await insert_customer(database_url, tenant.tenant_id, "Ann")
    plain = await create(tenant)
    assigned = await create(tenant, agent_id=agent)
    of_customer = await create(tenant, customer_id=customer)
    waiting = await move(tenant, (await create(tenant)).id, WAITING)

    async def ids(**filters: Any) -> list[str]:
        page = await tenant.conversations.ListConversations(cs.ListConversationsRequest(**filters))
        return [c.id for c in page.conversations]

    assert await ids() == [waiting.id, of_customer.id, assigned.id, plain.id]  # newest first
    assert await ids(state=WAITING) == [waiting.id]
    assert await ids(state=ACTIVE) == [of_customer.id, assigned.id, plain.id]
    assert await ids(agent_id=agent) == [assigned.id]
    assert await ids(customer_id=customer) == [of_customer.id]
    assert await ids(state=CLOSED) == []
    await owner_query(
        database_url, "UPDATE conversations SET last_activity = now() - interval '2 days' WHERE id = %s", plain.id
    )
    day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert await ids(last_activity_end_time=day_ago) == [plain.id]
    assert plain.id not in await ids(last_activity_start_time=day_ago)


async def test_search_by_ids_metadata_and_customer(tenant: Client, database_url: str) -> None:
    zoe = await insert_customer(database_url, tenant.tenant_id, "Zoë Åström", "+442079460958")
    other = await insert_customer(database_url, tenant.tenant_id, "Bob Smith", "+14155550100")
    first = await create(tenant, customer_id=zoe, genesys_conversation_id="g-old", metadata=struct(tier="gold", n=1))
    await update(tenant, pb.Conversation(id=first.id, genesys_conversation_id="g-new"), "genesys_conversation_id")
    second = await create(tenant, customer_id=other, metadata=struct(tier="silver"))

    async def ids(**criteria: Any) -> list[str]:
        page = await tenant.conversations.SearchConversations(cs.SearchConversationsRequest(**criteria))
        return [c.id for c in page.conversations]

    assert await ids(whatsapp_conversation_id=second.whatsapp_conversation_id) == [second.id]
    assert await ids(genesys_conversation_id="g-old") == [first.id]
    assert await ids(genesys_conversation_id="g-new") == [first.id]
    assert await ids(metadata=struct(tier="gold")) == [first.id]
    assert await ids(metadata=struct(n=1)) == [first.id]
    assert await ids(metadata=struct(tier="bronze")) == []
    assert await ids(customer_phone_number="020 7946 0958") == [first.id]  # national, read with the tenant's GB
    assert await ids(customer_phone_number="+1 415 555 0100") == [second.id]
    assert await ids(customer_name="zoe astrom") == [first.id]
    assert await ids(customer_name="SMI") == [second.id]
    assert await ids(customer_name="smi", metadata=struct(tier="gold")) == []  # every criterion must match
    bad = grpc.StatusCode.INVALID_ARGUMENT
    await expect(
        tenant.conversations.SearchConversations(cs.SearchConversationsRequest()), bad, "whatsapp_conversation_id"
    )
    await expect(
        tenant.conversations.SearchConversations(cs.SearchConversationsRequest(customer_phone_number="12")),
        bad,
        "customer_phone_number",
    )


async def test_reply_window_follows_window_expires_at(tenant: Client, database_url: str) -> None:
    conversation = await create(tenant)
    assert not conversation.reply_window_open and not conversation.HasField("reply_window_expire_time")
    set_window = "UPDATE conversations SET window_expires_at = now() + %s::interval WHERE id = %s"
    await owner_query(database_url, set_window, "23 hours", conversation.id)
    open_now = await get(tenant, conversation.id)
    assert open_now.reply_window_open
    expires = open_now.reply_window_expire_time.ToDatetime(tzinfo=dt.UTC)
    assert dt.timedelta(hours=22) < expires - dt.datetime.now(dt.UTC) < dt.timedelta(hours=24)
    await owner_query(database_url, set_window, "-1 minute", conversation.id)
    closed_now = await get(tenant, conversation.id)
    assert not closed_now.reply_window_open and closed_now.HasField("reply_window_expire_time")


async def test_unknown_ids_are_not_found(tenant: Client) -> None:
    missing = str(uuid.uuid4())
    not_found = grpc.StatusCode.NOT_FOUND
    calls = [
        tenant.conversations.GetConversation(cs.GetConversationRequest(conversation_id=missing)),
        tenant.conversations.LookupConversation(cs.LookupConversationRequest(whatsapp_conversation_id="wa-never")),
        move(tenant, missing, CLOSED),
        tenant.conversations.CloseConversation(cs.CloseConversationRequest(conversation_id=missing)),
        tenant.conversations.TransferConversation(
            cs.TransferConversationRequest(conversation_id=missing, agent_id=str(uuid.uuid4()))
        ),
        update(tenant, pb.Conversation(id=missing, metadata=struct(a=1)), "metadata"),
        tenant.conversations.GetConversationHistory(cs.GetConversationHistoryRequest(conversation_id=missing)),
    ]
    for call in calls:
        await expect(call, not_found)
