"""PostgreSQL cut and restored behind a TCP proxy, under a steady writer: calls answer UNAVAILABLE within the acquire
timeout, readiness follows the database, the first write after its return succeeds within about a second, no write
that answered OK is lost, and a connection lost at COMMIT answers ABORTED/COMMIT_OUTCOME_UNKNOWN (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import psycopg
import pytest

from statemgr import server as server_mod
from statemgr.config import Settings
from statemgr.v1 import conversation_pb2
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration import faults
from tests.integration.conftest import Client
from tests.integration.tcpproxy import TcpProxy

ACQUIRE_TIMEOUT = 1.0  # the default STATEMGR_DB_ACQUIRE_TIMEOUT_SECONDS
CALL_BOUND = ACQUIRE_TIMEOUT + 1.0  # what a call may take while PostgreSQL is away, scheduling noise included
READINESS_BOUND = 3.0  # probe interval (0.5 s) + probe timeout (1 s) + noise
RECOVERY_BOUND = 2.0  # the first OK write after PostgreSQL is back: about a second, with noise


@pytest.fixture
async def pg_proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    async with faults.proxy_to(database_url, 5432) as proxy:
        yield proxy


@pytest.fixture
def settings(settings: Settings, pg_proxy: TcpProxy) -> Settings:
    """The server reaches PostgreSQL through the proxy (its pool, probe, listener and leader connections alike)."""
    return dataclasses.replace(settings, database_url=faults.proxied(settings.database_url, pg_proxy))


def _creator(client: Client) -> faults.Writer:
    async def create(key: str) -> str:
        request = cs.CreateConversationRequest(
            conversation=conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-{key}"),
            request_id=str(uuid.UUID(key)),
        )
        return (await client.conversations.CreateConversation(request, timeout=15)).conversation.id

    return faults.Writer(create)


def _stored(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {str(row[0]) for row in conn.execute("SELECT id FROM conversations").fetchall()}


async def test_postgres_cut_answers_unavailable_fast_and_recovers_within_a_second(
    server: server_mod.Server, tenant: Client, pg_proxy: TcpProxy, database_url: str
) -> None:
    target = f"127.0.0.1:{server.port}"
    writer = _creator(tenant).start()
    await asyncio.sleep(0.5)
    await pg_proxy.cut()
    cut_at = time.monotonic()
    not_ready = await faults.until(
        lambda: _health_is(target, faults.NOT_SERVING), READINESS_BOUND, "readiness NOT_SERVING"
    )
    await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - cut_at)))
    await pg_proxy.restore()
    restored_at = time.monotonic()
    ready = await faults.until(lambda: _health_is(target, faults.SERVING), RECOVERY_BOUND, "readiness SERVING again")
    await faults.until(lambda: writer.first_ok_after(restored_at) is not None, RECOVERY_BOUND + 1, "a write succeeds")
    outcomes = await writer.stop()

    first = writer.first_ok_after(restored_at)
    assert first is not None
    recovery = first.started + first.seconds - restored_at
    during = [o for o in outcomes if o.started > cut_at + 0.05 and o.started + o.seconds < restored_at]
    slowest = max((o.seconds for o in during), default=0.0)
    print(f"readiness NOT_SERVING after {not_ready:.2f} s, SERVING {ready:.2f} s after the return; first OK write "
          f"{recovery:.2f} s after; {len(during)} calls during the cut, slowest {slowest:.2f} s")  # fmt: skip
    assert not faults.undocumented(outcomes), f"undocumented codes: {faults.undocumented(outcomes)}"
    assert during and all(o.code != faults.OK for o in during), "calls while PostgreSQL is away cannot succeed"
    assert max(o.seconds for o in outcomes) < CALL_BOUND, "a call waited past the acquire timeout"
    assert recovery < RECOVERY_BOUND
    ok_ids = {o.result for o in writer.ok()}
    assert ok_ids <= _stored(database_url), "a write that answered OK is not in the database"


async def test_connection_lost_at_commit_answers_outcome_unknown_and_a_retry_finds_the_write(
    server: server_mod.Server, tenant: Client, pg_proxy: TcpProxy, database_url: str
) -> None:
    key = uuid.uuid4().hex
    request = cs.CreateConversationRequest(
        conversation=conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-{key}"), request_id=str(uuid.UUID(key))
    )
    pg_proxy.cut_after(b"COMMIT")  # PostgreSQL gets the COMMIT; its answer never comes back
    try:
        await tenant.conversations.CreateConversation(request, timeout=10)
        raise AssertionError("the call answered OK although its connection was lost at COMMIT")
    except grpc.aio.AioRpcError as exc:
        assert faults.outcome_of(exc) == faults.OUTCOME_UNKNOWN, exc.details()
    assert pg_proxy.cuts_after == 1

    retried = (await tenant.conversations.CreateConversation(request, timeout=10)).conversation
    assert retried.whatsapp_conversation_id == f"wa-{key}"
    assert _stored(database_url) == {retried.id}, "the write had committed; the retry found it, no duplicate"


async def _health_is(target: str, status: int) -> bool:
    return await faults.health(target) == status
