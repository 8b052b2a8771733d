"""Redis cut, restored, stalled and released behind a TCP proxy while a client writes and reads through the server:
every call still answers OK (from PostgreSQL) within a bound, a read after a write returned sees it while Redis is
away, no OK write is lost, and the server goes back to using Redis by itself (docs/operations.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
import redis
from google.protobuf import field_mask_pb2

from statemgr import server as server_mod
from statemgr.cache import keys
from statemgr.config import Settings
from statemgr.v1 import conversation_pb2
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration import faults, services
from tests.integration.conftest import Client
from tests.integration.tcpproxy import TcpProxy

CALL_BOUND = 1.5  # a write and a read: Redis costs at most its 50 ms timeout each; the rest is a loaded machine
PHASE_SECONDS = 1.2


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    async with faults.proxy_to(services.require(services.REDIS_URL, 6379, "Redis"), 6379) as proxy:
        yield proxy


@pytest.fixture
def settings(settings: Settings, redis_proxy: TcpProxy) -> Settings:
    return dataclasses.replace(settings, redis_url=faults.proxied(services.REDIS_URL, redis_proxy))


@pytest.fixture
def direct() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(services.REDIS_URL)
    yield client  # type: ignore[misc]
    client.close()


def _cached_keys(direct: redis.Redis, tenant_id: str) -> int:
    return sum(1 for _ in direct.scan_iter(match=keys.tenant_prefix(uuid.UUID(tenant_id)) + "*", count=1000))


async def _write_then_read(client: Client, conversation: conversation_pb2.Conversation, key: str) -> tuple[str, str]:
    """Maps a new Genesys id on the conversation, then looks the conversation up by its WhatsApp id (a cached read);
    returns the id written and the one read."""
    genesys_id = f"gen-{key}"
    update = cs.UpdateConversationRequest(
        conversation=conversation_pb2.Conversation(id=conversation.id, genesys_conversation_id=genesys_id),
        update_mask=field_mask_pb2.FieldMask(paths=["genesys_conversation_id"]),
    )
    await client.conversations.UpdateConversation(update, timeout=10)
    lookup = cs.LookupConversationRequest(whatsapp_conversation_id=conversation.whatsapp_conversation_id)
    found = (await client.conversations.LookupConversation(lookup, timeout=10)).conversation
    return genesys_id, found.genesys_conversation_id


async def test_redis_cut_and_stalled_every_call_answers_from_postgres(
    server: server_mod.Server, tenant: Client, redis_proxy: TcpProxy, direct: redis.Redis, database_url: str
) -> None:
    rooms = []
    for n in range(4):
        create = cs.CreateConversationRequest(
            conversation=conversation_pb2.Conversation(whatsapp_conversation_id=f"wa-redis-{n}")
        )
        rooms.append((await tenant.conversations.CreateConversation(create)).conversation)
    writers = [faults.Writer(functools.partial(_write_then_read, tenant, room), concurrency=1) for room in rooms]
    for writer in writers:
        writer.start()
    phases: list[tuple[str, float, float]] = []

    async def phase(name: str) -> None:
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(PHASE_SECONDS)
        phases.append((name, started, asyncio.get_running_loop().time()))

    try:
        await phase("before")
        await redis_proxy.cut()
        await phase("cut")
        await redis_proxy.restore()
        await phase("restored")
        redis_proxy.stall()
        await phase("stalled")
        redis_proxy.unstall()
        await phase("released")
    finally:
        redis_proxy.unstall()
        for writer in writers:
            await writer.stop()
    outcomes = [o for writer in writers for o in writer.outcomes]

    assert {o.code for o in outcomes} == {faults.OK}, f"codes: {faults.undocumented(outcomes)}"
    slowest = max(o.seconds for o in outcomes)
    by_phase = {n: max((o.seconds for o in outcomes if s <= o.started < e), default=0) for n, s, e in phases}
    print(f"{len(outcomes)} write+read pairs; slowest by phase (s): { {n: round(v, 3) for n, v in by_phase.items()} }")
    assert slowest < CALL_BOUND, "a call waited on Redis past its timeout"
    for name, start, end in phases:
        if name in ("cut", "stalled"):
            seen = [o.result for o in outcomes if start <= o.started and o.started + o.seconds <= end]
            assert seen, f"no call completed while Redis was {name}"
            assert all(written == read for written, read in seen), f"a read missed the write before it ({name})"
    with psycopg.connect(database_url) as conn:
        mapped = {row[0] for row in conn.execute("SELECT genesys_conversation_id FROM conversation_genesys_ids")}
        current = {row[0] for row in conn.execute("SELECT genesys_conversation_id FROM conversations")}
    assert {o.result[0] for o in outcomes} <= mapped, "a mapping that answered OK is not in the history"
    assert current == {w.outcomes[-1].result[0] for w in writers}, "a room does not hold its last OK mapping"

    async def cached_again() -> bool:
        lookup = cs.LookupConversationRequest(whatsapp_conversation_id=f"wa-redis-late-{uuid.uuid4().hex}")
        create = cs.CreateConversationRequest(conversation=conversation_pb2.Conversation(
            whatsapp_conversation_id=lookup.whatsapp_conversation_id))  # fmt: skip
        await tenant.conversations.CreateConversation(create)
        before = _cached_keys(direct, tenant.tenant_id)
        await tenant.conversations.LookupConversation(lookup)
        return _cached_keys(direct, tenant.tenant_id) > before

    await faults.until(cached_again, 10.0, "the server stores lookups in Redis again")
    direct.delete(*direct.scan_iter(match=keys.tenant_prefix(uuid.UUID(tenant.tenant_id)) + "*", count=1000))
