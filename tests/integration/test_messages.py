"""MessageService end to end: idempotent recording, status reports as webhooks deliver them (duplicated, out of
order, concurrent), parking, batches and retries, through the generated stubs.

The helpers at the top are shared by the other message test modules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from statemgr.domain import messages as d
from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import message_pb2 as pb
from statemgr.v1 import message_service_pb2 as ms
from tests.integration.conftest import Client
from tests.integration.errors import expect
from tests.integration.test_conversations import CLOSED, create, get, history, kinds, move
from tests.integration.test_customers import SyncConn, rows, timestamp

BAD = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
INBOUND, OUTBOUND = pb.MESSAGE_DIRECTION_INBOUND, pb.MESSAGE_DIRECTION_OUTBOUND
PENDING, SENT, FAILED, DELIVERED, READ = (
    pb.MESSAGE_STATUS_PENDING,
    pb.MESSAGE_STATUS_SENT,
    pb.MESSAGE_STATUS_FAILED,
    pb.MESSAGE_STATUS_DELIVERED,
    pb.MESSAGE_STATUS_READ,
)
T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def wamid() -> str:
    return "wamid." + uuid.uuid4().hex


async def record(client: Client, conversation_id: str, **fields: Any) -> ms.RecordMessageResponse:
    """RecordMessage; inbound with a fresh WhatsApp id unless the fields say otherwise."""
    values: dict[str, Any] = {"direction": INBOUND, "content": "hello", **fields}
    if "whatsapp_message_id" not in values and "genesys_message_id" not in values:
        values["whatsapp_message_id"] = wamid()
    message = pb.Message(conversation_id=conversation_id, **values)
    return await client.messages.RecordMessage(ms.RecordMessageRequest(message=message))


def report(
    status: int, seconds: float | None = None, key: str = "", genesys: str = "", **fields: Any
) -> ms.UpdateMessageStatusRequest:
    request = ms.UpdateMessageStatusRequest(status=status, **fields)
    if genesys:
        request.genesys_message_id = genesys
    else:
        request.whatsapp_message_id = key
    if seconds is not None:
        request.status_time.CopyFrom(timestamp(at(seconds)))
    return request


async def status(client: Client, request: ms.UpdateMessageStatusRequest) -> ms.UpdateMessageStatusResponse:
    return await client.messages.UpdateMessageStatus(request)


async def conversation_id(client: Client) -> str:
    return (await create(client)).id


async def test_recording_is_idempotent_on_each_provider_id(tenant: Client) -> None:
    conv = await conversation_id(tenant)
    wa = wamid()
    first = await record(tenant, conv, whatsapp_message_id=wa, media_urls=["https://cdn.test/1.jpg"])
    assert first.created and first.message.status == SENT and first.message.HasField("send_time")
    again = await record(tenant, conv, whatsapp_message_id=wa, media_urls=["https://cdn.test/1.jpg"], status=SENT)
    assert not again.created and again.message == first.message
    for change in ({"content": "other"}, {"media_urls": []}, {"direction": OUTBOUND}):
        fields: dict[str, Any] = {"whatsapp_message_id": wa, "media_urls": ["https://cdn.test/1.jpg"], **change}
        await expect(record(tenant, conv, **fields), EXISTS)
    await expect(
        record(tenant, await conversation_id(tenant), whatsapp_message_id=wa, media_urls=["https://cdn.test/1.jpg"]),
        EXISTS,
    )
    out = await record(tenant, conv, direction=OUTBOUND, genesys_message_id="g-1", content="reply")
    assert out.created and out.message.status == PENDING and not out.message.HasField("send_time")
    assert not (await record(tenant, conv, direction=OUTBOUND, genesys_message_id="g-1", content="reply")).created
    await expect(record(tenant, conv, direction=OUTBOUND, genesys_message_id="g-1", content="changed"), EXISTS)
    both = record(tenant, conv, direction=OUTBOUND, genesys_message_id="g-1", whatsapp_message_id=wa, content="reply")
    await expect(both, EXISTS)  # the two ids belong to two messages
    listed = await tenant.messages.ListMessages(ms.ListMessagesRequest(conversation_id=conv))
    assert [m.id for m in listed.messages] == [first.message.id, out.message.id]


async def test_a_message_needs_an_open_conversation_of_the_tenant(tenant: Client) -> None:
    conv = await conversation_id(tenant)
    await expect(record(tenant, str(uuid.uuid4())), NOT_FOUND)
    await move(tenant, conv, CLOSED)
    await expect(record(tenant, conv), grpc.StatusCode.FAILED_PRECONDITION)


async def test_inbound_messages_open_the_reply_window_and_never_move_it_back(tenant: Client) -> None:
    conv = await conversation_id(tenant)
    assert not (await get(tenant, conv)).HasField("reply_window_expire_time")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    await record(tenant, conv, send_time=timestamp(now - dt.timedelta(hours=1)))
    opened = await get(tenant, conv)
    assert opened.reply_window_expire_time.ToDatetime(dt.UTC) == now + dt.timedelta(hours=23)
    assert opened.reply_window_open
    await record(tenant, conv, send_time=timestamp(now - dt.timedelta(hours=5)))  # a late webhook
    await record(tenant, conv, direction=OUTBOUND, genesys_message_id="g-" + uuid.uuid4().hex)
    after = await get(tenant, conv)
    assert after.reply_window_expire_time == opened.reply_window_expire_time
    assert after.last_activity_time.ToDatetime(dt.UTC) > now - dt.timedelta(minutes=1)
    stale = await conversation_id(tenant)
    await record(tenant, stale, send_time=timestamp(now - dt.timedelta(hours=25)))
    assert not (await get(tenant, stale)).reply_window_open


async def test_get_lookup_and_list_in_order_with_pages(tenant: Client) -> None:
    conv = await conversation_id(tenant)
    recorded = [(await record(tenant, conv, content=f"m{i}")).message for i in range(7)]
    got = await tenant.messages.GetMessage(ms.GetMessageRequest(message_id=recorded[3].id))
    assert got.message == recorded[3]
    by_wa = await tenant.messages.LookupMessage(
        ms.LookupMessageRequest(whatsapp_message_id=recorded[2].whatsapp_message_id)
    )
    assert by_wa.message == recorded[2]
    await expect(tenant.messages.LookupMessage(ms.LookupMessageRequest(genesys_message_id="nope")), NOT_FOUND)
    seen: list[str] = []
    request = ms.ListMessagesRequest(conversation_id=conv, page_size=3)
    while True:
        page = await tenant.messages.ListMessages(request)
        seen.extend(m.content for m in page.messages)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert seen == [f"m{i}" for i in range(7)]
    await expect(tenant.messages.ListMessages(ms.ListMessagesRequest(conversation_id=str(uuid.uuid4()))), NOT_FOUND)


async def test_update_message_attaches_a_provider_id_once(tenant: Client) -> None:
    conv = await conversation_id(tenant)
    one, two = (await record(tenant, conv)).message, (await record(tenant, conv)).message
    parked = await status(tenant, report(DELIVERED, 5, genesys="g-one"))
    assert parked.parked

    async def attach(message_id: str, genesys_id: str) -> pb.Message:
        request = ms.UpdateMessageRequest(
            message=pb.Message(id=message_id, genesys_message_id=genesys_id),
            update_mask=field_mask_pb2.FieldMask(paths=["genesys_message_id"]),
        )
        return (await tenant.messages.UpdateMessage(request)).message

    attached = await attach(one.id, "g-one")
    assert attached.genesys_message_id == "g-one"
    assert attached.status == DELIVERED and attached.deliver_time.ToDatetime(dt.UTC) == at(5)  # the parked report
    assert (await attach(one.id, "g-one")) == attached  # a retry changes nothing
    await expect(attach(two.id, "g-one"), EXISTS)  # another message has it
    await expect(attach(one.id, "g-other"), EXISTS)  # this message has another
    await expect(attach(str(uuid.uuid4()), "g-x"), NOT_FOUND)
    lookup = await tenant.messages.LookupMessage(ms.LookupMessageRequest(genesys_message_id="g-one"))
    assert lookup.message.id == one.id


async def test_webhook_realism(tenant: Client) -> None:
    """Duplicates, statuses out of order, read without delivered, delivered after failed, a bare duplicate failed."""
    conv = await conversation_id(tenant)
    wa = (
        await record(tenant, conv, direction=OUTBOUND, whatsapp_message_id=wamid(), status=PENDING)
    ).message.whatsapp_message_id

    read = await status(tenant, report(READ, 30, wa))
    assert read.changed and read.message.status == READ and read.message.read_time.ToDatetime(dt.UTC) == at(30)
    assert not read.message.HasField("deliver_time")  # read without delivered
    late = await status(tenant, report(DELIVERED, 20, wa))
    assert late.changed and late.message.status == READ and late.message.deliver_time.ToDatetime(dt.UTC) == at(20)
    sent = await status(tenant, report(SENT, 20, wa))  # the same second as delivered: not a duplicate
    assert sent.changed and sent.message.send_time.ToDatetime(dt.UTC) == at(20)
    duplicate = await status(tenant, report(DELIVERED, 25, wa))
    assert not duplicate.changed and duplicate.message == sent.message

    failing = (
        await record(tenant, conv, direction=OUTBOUND, whatsapp_message_id=wamid(), status=SENT)
    ).message.whatsapp_message_id
    failed = await status(
        tenant, report(FAILED, 10, failing, error_code="131026", error_message="Message undeliverable")
    )
    assert failed.changed and failed.message.status == FAILED and failed.message.error_code == "131026"
    bare = await status(tenant, report(FAILED, 11, failing))
    assert not bare.changed and bare.message.error_message == "Message undeliverable"
    delivered = await status(tenant, report(DELIVERED, 12, failing))
    assert delivered.changed and delivered.message.status == DELIVERED
    m = delivered.message
    assert (m.error_code, m.error_message, m.fail_time.ToDatetime(dt.UTC)) == (
        "131026",
        "Message undeliverable",
        at(10),
    )
    assert not (await status(tenant, report(FAILED, 13, failing, error_code="1", error_message="x"))).changed


async def test_100_concurrent_reports_in_random_order_lose_nothing(tenant: Client, app_conn: SyncConn) -> None:
    conv = await conversation_id(tenant)
    wa = (
        await record(tenant, conv, direction=OUTBOUND, whatsapp_message_id=wamid(), status=PENDING)
    ).message.whatsapp_message_id
    times = {SENT: 1, FAILED: 2, DELIVERED: 3, READ: 4}
    reports = [
        report(s, times[s], wa, **({"error_code": "470", "error_message": "expired"} if s == FAILED else {}))
        for s in times
        for _ in range(25)
    ]
    random.shuffle(reports)
    results = await asyncio.gather(*(status(tenant, r) for r in reports))
    assert sum(r.changed for r in results) == 4  # each status's first report changes something, no other does
    final = (await tenant.messages.LookupMessage(ms.LookupMessageRequest(whatsapp_message_id=wa))).message
    assert final.status == READ
    assert [final.send_time.ToDatetime(dt.UTC), final.fail_time.ToDatetime(dt.UTC)] == [at(1), at(2)]
    assert [final.deliver_time.ToDatetime(dt.UTC), final.read_time.ToDatetime(dt.UTC)] == [at(3), at(4)]
    assert (final.error_code, final.error_message) == ("470", "expired")
    changes = rows(app_conn, tenant.tenant_id, "SELECT count(*) FROM events WHERE type = 'message.status_changed'")
    assert changes == [(4,)]


async def test_a_status_before_its_message_is_parked_and_applied_on_record(tenant: Client) -> None:
    conv = await conversation_id(tenant)
    wa = wamid()
    for request in (report(DELIVERED, 2, wa), report(READ, 3, wa), report(DELIVERED, 9, wa)):
        parked = await status(tenant, request)
        assert parked.parked and not parked.changed and not parked.HasField("message")
    recorded = (await record(tenant, conv, direction=OUTBOUND, whatsapp_message_id=wa, status=PENDING)).message
    assert recorded.status == READ
    assert (recorded.deliver_time.ToDatetime(dt.UTC), recorded.read_time.ToDatetime(dt.UTC)) == (at(2), at(3))
    assert not (await status(tenant, report(READ, 4, wa))).parked  # applied once: the parking is empty now
    entries = await history(tenant, conv)
    assert kinds(entries).count("message_recorded") == 1
    changes = [e.message_status_change for e in entries if e.WhichOneof("kind") == "message_status_change"]
    assert [(c.status, c.changed) for c in changes] == [("delivered", True), ("read", True)]


async def test_a_batch_of_500_with_3_bad_items_applies_497(tenant: Client) -> None:
    conv = await conversation_id(tenant)
    ids = [
        (await record(tenant, conv, direction=OUTBOUND, whatsapp_message_id=wamid(), status=SENT)).message
        for _ in range(100)
    ]
    requests = [report(DELIVERED, 5, m.whatsapp_message_id) for m in ids] + [
        report(READ, 6, m.whatsapp_message_id) for m in ids
    ]
    requests += [report(SENT, 1, wamid()) for _ in range(297)]  # not recorded yet: parked
    bad = {
        17: ms.UpdateMessageStatusRequest(whatsapp_message_id="x", status=PENDING),
        250: report(READ, 6),
        444: report(FAILED, 1, "y", error_code="9" * 65),
    }
    for index, item in bad.items():
        requests.insert(index, item)
    assert len(requests) == 500
    results = (
        await tenant.messages.BatchUpdateMessageStatus(ms.BatchUpdateMessageStatusRequest(requests=requests))
    ).results
    assert len(results) == 500
    failed = {i: (r.code, r.field) for i, r in enumerate(results) if r.code != 0}
    assert failed == {17: (3, "status"), 250: (3, "whatsapp_message_id"), 444: (3, "error_code")}
    ok = [r for i, r in enumerate(results) if i not in bad]
    assert sum(r.changed for r in ok) == 200 and sum(r.parked for r in ok) == 297
    assert all(r.message_id for r in ok if not r.parked)
    listed = await tenant.messages.ListMessages(ms.ListMessagesRequest(conversation_id=conv, page_size=1000))
    assert {m.status for m in listed.messages} == {READ}
    for size in (0, 1001):
        many = ms.BatchUpdateMessageStatusRequest(requests=[report(SENT, 1, "w")] * size)
        await expect(tenant.messages.BatchUpdateMessageStatus(many), BAD, "requests")


async def test_retry_takes_a_failed_message_back_to_pending_within_the_limit(
    tenant: Client, app_conn: SyncConn
) -> None:
    conv = await conversation_id(tenant)
    message = (await record(tenant, conv, direction=OUTBOUND, genesys_message_id="g-" + uuid.uuid4().hex)).message
    retry = ms.RetryMessageRequest(message_id=message.id)
    precondition = grpc.StatusCode.FAILED_PRECONDITION
    await expect(tenant.messages.RetryMessage(retry), precondition)  # PENDING, not FAILED
    for attempt in range(1, 6):  # STATEMGR_MAX_MESSAGE_RETRIES defaults to 5
        failed = await status(
            tenant, report(FAILED, attempt, genesys=message.genesys_message_id, error_code=str(attempt))
        )
        assert failed.message.status == FAILED and failed.message.error_code == str(attempt)
        retried = (await tenant.messages.RetryMessage(retry)).message
        assert (retried.status, retried.retry_count) == (PENDING, attempt)
        assert retried.fail_time.ToDatetime(dt.UTC) == at(attempt)  # the last failure stays on record
    await status(tenant, report(FAILED, 9, genesys=message.genesys_message_id))
    await expect(tenant.messages.RetryMessage(retry), precondition)
    await expect(tenant.messages.RetryMessage(ms.RetryMessageRequest(message_id=str(uuid.uuid4()))), NOT_FOUND)
    events = rows(app_conn, tenant.tenant_id, "SELECT type, count(*) FROM events GROUP BY type ORDER BY type")
    assert dict(events) == {
        "conversation.created": 1,
        "message.recorded": 1,
        "message.retried": 5,
        "message.status_changed": 6,
    }


async def test_events_carry_ids_and_statuses_never_content(tenant: Client, app_conn: SyncConn) -> None:
    conv = await conversation_id(tenant)
    recorded = (await record(tenant, conv, content="my secret plans", whatsapp_message_id=wamid())).message
    wa = recorded.whatsapp_message_id
    await status(tenant, report(READ, 1, wa))  # applied at once (SQL writes the event)
    parked = wamid()
    await status(tenant, report(DELIVERED, 1, parked))  # parked, applied on record (Python writes the event)
    later = (await record(tenant, conv, whatsapp_message_id=parked)).message
    payloads = rows(
        app_conn, tenant.tenant_id, "SELECT type, payload FROM events WHERE type LIKE 'message.%%' ORDER BY seq"
    )
    assert [p[0] for p in payloads] == ["message.recorded", "message.status_changed"] * 2
    ids = ("conversation_id", "message_id", "message_status")
    assert {k: payloads[1][1][k] for k in ids} == {
        "conversation_id": conv,
        "message_id": recorded.id,
        "message_status": "read",
    }
    assert {k: payloads[3][1][k] for k in ids} == {
        "conversation_id": conv,
        "message_id": later.id,
        "message_status": "delivered",
    }
    # What analytics folds, the same whether SQL (the first) or Python (the second) wrote the event: times, direction.
    assert set(payloads[1][1]) == {*ids, "direction", "at", "read_at"}
    assert set(payloads[3][1]) == {*ids, "direction", "at", "delivered_at"}
    assert dt.datetime.fromisoformat(payloads[1][1]["at"]) == recorded.create_time.ToDatetime(dt.UTC)
    assert dt.datetime.fromisoformat(payloads[3][1]["at"]) == later.create_time.ToDatetime(dt.UTC)
    assert all("secret" not in str(p) and wa not in str(p) for p in payloads)


async def test_history_shows_messages_and_their_status_changes(tenant: Client) -> None:
    conv = await conversation_id(tenant)
    wa = (await record(tenant, conv)).message.whatsapp_message_id
    await status(tenant, report(DELIVERED, 1, wa))
    await status(tenant, report(READ, 2, wa))
    await move(tenant, conv, cpb.CONVERSATION_STATE_WAITING)
    assert kinds(await history(tenant, conv, page_size=2)) == [
        "created",
        "message_recorded",
        "message_status_change",
        "message_status_change",
        "state_change",
    ]


async def test_bad_input_names_the_field_and_writes_nothing(tenant: Client, app_conn: SyncConn) -> None:
    conv = await conversation_id(tenant)
    m = tenant.messages
    mask = field_mask_pb2.FieldMask
    cases: list[tuple[Any, str]] = [
        (m.RecordMessage(ms.RecordMessageRequest()), "message.whatsapp_message_id"),
        (record(tenant, "nope"), "message.conversation_id"),
        (record(tenant, conv, direction=pb.MESSAGE_DIRECTION_UNSPECIFIED), "message.direction"),
        (record(tenant, conv, whatsapp_message_id="w" * 257), "message.whatsapp_message_id"),
        (record(tenant, conv, genesys_message_id=" "), "message.genesys_message_id"),
        (record(tenant, conv, status=READ), "message.status"),
        (record(tenant, conv, content="x" * 70_000), "message.content"),
        (record(tenant, conv, media_urls=["u"] * 21), "message.media_urls"),
        (record(tenant, conv, media_urls=["u" * 2049]), "message.media_urls[0]"),
        (m.GetMessage(ms.GetMessageRequest(message_id="1")), "message_id"),
        (m.LookupMessage(ms.LookupMessageRequest()), "whatsapp_message_id"),
        (m.ListMessages(ms.ListMessagesRequest(conversation_id="")), "conversation_id"),
        (m.ListMessages(ms.ListMessagesRequest(conversation_id=conv, page_size=-5)), "page_size"),
        (m.ListMessages(ms.ListMessagesRequest(conversation_id=conv, page_token="?")), "page_token"),
        (m.UpdateMessage(ms.UpdateMessageRequest()), "message.id"),
        (m.UpdateMessage(ms.UpdateMessageRequest(message=pb.Message(id=str(uuid.uuid4())))), "update_mask"),
        (
            m.UpdateMessage(
                ms.UpdateMessageRequest(message=pb.Message(id=str(uuid.uuid4())), update_mask=mask(paths=["content"]))
            ),
            "update_mask",
        ),
        (
            m.UpdateMessage(
                ms.UpdateMessageRequest(
                    message=pb.Message(id=str(uuid.uuid4())), update_mask=mask(paths=["genesys_message_id"])
                )
            ),
            "message.genesys_message_id",
        ),
        (status(tenant, ms.UpdateMessageStatusRequest(status=SENT)), "whatsapp_message_id"),
        (status(tenant, report(pb.MESSAGE_STATUS_UNSPECIFIED, 1, "w")), "status"),
        (status(tenant, report(PENDING, 1, "w")), "status"),
        (status(tenant, report(FAILED, 1, "w", error_message="e" * 2001)), "error_message"),
        (m.RetryMessage(ms.RetryMessageRequest()), "message_id"),
    ]
    for call, field in cases:
        await expect(call, BAD, field)
    for table in ("messages", "parked_statuses", "message_status_history"):
        assert rows(app_conn, tenant.tenant_id, f"SELECT count(*) FROM {table}") == [(0,)], table


async def test_the_sql_applies_the_rule_of_domain_merge(tenant: Client) -> None:
    """Random report sequences through the server end where statemgr.domain.messages.merge says they should."""
    conv = await conversation_id(tenant)
    rng = random.Random(7)
    statuses = {SENT: d.Status.SENT, FAILED: d.Status.FAILED, DELIVERED: d.Status.DELIVERED, READ: d.Status.READ}
    for _ in range(30):
        wa = (await record(tenant, conv, direction=OUTBOUND, whatsapp_message_id=wamid(), status=PENDING)).message
        expected = d.Delivery(d.Status.PENDING)
        for _ in range(6):
            number, seconds = rng.choice(list(statuses)), rng.randrange(5)
            details = rng.choice([("", ""), ("131026", "undeliverable"), ("470", "")])
            request = report(number, seconds, wa.whatsapp_message_id, error_code=details[0], error_message=details[1])
            key = d.MessageKey(d.KeyKind.WHATSAPP, wa.whatsapp_message_id)
            expected = d.merge(expected, d.StatusReport(key, statuses[number], at(seconds), *details))
            got = (await status(tenant, request)).message
        assert _delivery(got) == expected


def _delivery(message: pb.Message) -> d.Delivery:
    def time(field: str) -> dt.datetime | None:
        return getattr(message, field).ToDatetime(dt.UTC) if message.HasField(field) else None

    names = {SENT: d.Status.SENT, FAILED: d.Status.FAILED, DELIVERED: d.Status.DELIVERED, READ: d.Status.READ}
    return d.Delivery(
        names.get(message.status, d.Status.PENDING),
        time("send_time"),
        time("deliver_time"),
        time("read_time"),
        time("fail_time"),
        message.error_code or None,
        message.error_message or None,
    )
