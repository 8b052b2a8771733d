"""Archive objects without I/O: Parquet round trips of PostgreSQL values, and the erasure's scrub of archived rows."""

from __future__ import annotations

import datetime as dt
import uuid

from statemgr.jobs import parquet
from statemgr.jobs.archive_store import normalized_url, object_key
from statemgr.jobs.erasure import Scrub
from statemgr.store.lifecycle import Columns

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def test_values_keep_their_types_and_read_back_as_postgres_takes_them() -> None:
    ident = uuid.uuid4()
    columns = Columns(
        names=["id", "metadata", "media_urls", "created_at", "version", "done", "note"],
        types=["uuid", "jsonb", "_text", "timestamptz", "int8", "bool", "interval"],
        rows=[
            (ident, {"a": [1, "ü"]}, ["https://x/1", "https://x/2"], WHEN, 7, True, dt.timedelta(days=2)),
            (uuid.uuid4(), None, [], None, None, None, None),
        ],
    )
    table = parquet.read(parquet.encode(columns, {"statemgr.table": "t"}))
    assert table.num_rows == 2
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("media_urls").type.value_type) == "string"
    assert parquet.pg_types(table)["metadata"] == "jsonb"
    (first,) = parquet.restorable_rows(table, lambda row: row["id"] == str(ident))
    assert first == {
        "id": str(ident),
        "metadata": {"a": [1, "ü"]},
        "media_urls": ["https://x/1", "https://x/2"],
        "created_at": WHEN.isoformat(),
        "version": 7,
        "done": True,
        "note": "2 days, 0:00:00",
    }


def test_the_checksum_is_of_the_bytes() -> None:
    assert parquet.checksum(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_scrub_anonymises_the_customers_rows_and_drops_their_parked_reports() -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    scrub = Scrub({mine})
    messages = [
        {"id": "m1", "conversation_id": mine, "whatsapp_message_id": "wamid.A", "genesys_message_id": "g1",
         "content": "secret", "media_urls": ["u"], "error_message": "oops"},
        {"id": "m2", "conversation_id": other, "whatsapp_message_id": "wamid.B", "genesys_message_id": None,
         "content": "keep", "media_urls": [], "error_message": None},
    ]  # fmt: skip
    assert scrub.rows("messages", messages) == [
        {"id": "m1", "conversation_id": mine, "whatsapp_message_id": "erased:m1", "genesys_message_id": "g1",
         "content": "", "media_urls": [], "error_message": ""},
        messages[1],
    ]  # fmt: skip
    parked = [
        {"whatsapp_message_id": "wamid.A", "genesys_message_id": None},
        {"whatsapp_message_id": None, "genesys_message_id": "g1"},
        {"whatsapp_message_id": "wamid.B", "genesys_message_id": None},
    ]
    assert scrub.rows("parked_statuses", parked) == [parked[2]]
    assert scrub.rows("conversation_state_transitions", [{"conversation_id": other, "reason": "x"}]) is None
    conversations = [{"id": mine, "whatsapp_conversation_id": "447700900123", "metadata": '{"n": 1}'}]
    assert scrub.rows("conversations", conversations) == [
        {"id": mine, "whatsapp_conversation_id": f"erased:{mine}", "metadata": "{}"}
    ]


def test_the_layout_is_by_tenant_date_and_table() -> None:
    tenant, batch = uuid.uuid4(), uuid.uuid4()
    key = object_key(tenant, dt.date(2026, 12, 6), "messages", batch)
    assert key == f"tenant={tenant}/date=2026-12-06/messages/{batch}.parquet"
    assert normalized_url("s3://bucket/prefix") == "s3://bucket/prefix"
    assert normalized_url("/var/lib/statemgr/archive") == "file:///var/lib/statemgr/archive"
