"""Parked status reports expire: this module's server keeps them for 1 second (STATEMGR_PARKED_STATUS_TTL_SECONDS)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from statemgr.config import Settings
from statemgr.services import messages as message_service
from statemgr.v1 import message_service_pb2 as ms
from tests.integration.conftest import Client
from tests.integration.test_customers import SyncConn, rows
from tests.integration.test_messages import (
    DELIVERED,
    OUTBOUND,
    PENDING,
    READ,
    conversation_id,
    record,
    report,
    status,
    wamid,
)

TTL_SECONDS = 1


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, parked_status_ttl_seconds=TTL_SECONDS)


async def test_an_expired_report_is_not_applied_and_is_counted(tenant: Client, app_conn: SyncConn) -> None:
    before = message_service.parked_counts()
    conv = await conversation_id(tenant)
    stale, fresh = wamid(), wamid()
    assert (await status(tenant, report(READ, 1, stale))).parked
    await asyncio.sleep(TTL_SECONDS + 0.2)
    assert (await status(tenant, report(DELIVERED, 2, fresh))).parked  # parking prunes the expired one on the way
    assert rows(app_conn, tenant.tenant_id, "SELECT whatsapp_message_id FROM parked_statuses") == [(fresh,)]
    message = (await record(tenant, conv, direction=OUTBOUND, whatsapp_message_id=stale, status=PENDING)).message
    assert message.status == PENDING and not message.HasField("read_time")
    applied = (await record(tenant, conv, direction=OUTBOUND, whatsapp_message_id=fresh, status=PENDING)).message
    assert applied.status == DELIVERED
    after = message_service.parked_counts()
    assert {name: after[name] - before[name] for name in after} == {"parked": 2, "applied": 1, "expired": 1}


async def test_an_expired_report_found_at_recording_is_dropped(tenant: Client, app_conn: SyncConn) -> None:
    before = message_service.parked_counts()["expired"]
    conv = await conversation_id(tenant)
    stale = wamid()
    await status(tenant, report(READ, 1, stale))
    await asyncio.sleep(TTL_SECONDS + 0.2)
    message = (await record(tenant, conv, direction=OUTBOUND, whatsapp_message_id=stale, status=PENDING)).message
    lookup = await tenant.messages.LookupMessage(ms.LookupMessageRequest(whatsapp_message_id=stale))
    assert message.status == PENDING and lookup.message == message
    assert rows(app_conn, tenant.tenant_id, "SELECT count(*) FROM parked_statuses") == [(0,)]
    assert message_service.parked_counts()["expired"] == before + 1
