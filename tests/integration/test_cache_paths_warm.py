"""The warm-up at start: a server coming up next to a cold Redis stores every tenant's recently active open
conversations (by id, WhatsApp id, Genesys id, and that id's ResolveOutbound route) in the background, newest
first and bounded; reads then need no database."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import redis

from statemgr import server as server_mod
from statemgr.cache import Kind, WarmReport, keys
from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration import cache_fixtures, cache_paths
from tests.integration.cache_paths import Cluster, Node
from tests.integration.conftest import Client
from tests.integration.test_conversations import CLOSED, create, move, owner_query
from tests.integration.test_customers import inbound, new_wa_id
from tests.integration.test_integration_resolve import outbound

redis_url = cache_fixtures.redis_url
direct = cache_fixtures.direct
forget_tenants = cache_paths.forget_tenants
cached_settings = cache_paths.cached_settings
cluster = cache_paths.cluster


def _cold(direct: redis.Redis, *tenants: Client) -> None:
    """Empties Redis of the tenants' keys, generations included: as after a Redis restart."""
    for tenant in tenants:
        found = list(direct.scan_iter(match=f"sm:{{{tenant.tenant_id}}}:*", count=1000))
        if found:
            direct.delete(*found)


def _stored(direct: redis.Redis, tenant: Client) -> set[str]:
    return {key.decode() for key in direct.scan_iter(match=f"sm:{{{tenant.tenant_id}}}:*", count=1000)}


async def _conversations(node: Node, database_url: str) -> tuple[Client, Client, dict[str, cpb.Conversation]]:
    """Two tenants: open ones (one mapped to Genesys, one with a customer), a closed one, one idle for two days."""
    one, two = await node.clients.new_tenant("One"), await node.clients.new_tenant("Two")
    made = {
        "mapped": await create(one, genesys_conversation_id="gen-" + uuid.uuid4().hex),
        "customer": (await inbound(one, new_wa_id())).conversation,
        "closed": await create(one),
        "idle": await create(one),
        "other tenant": await create(two),
    }
    await move(one, made["closed"].id, CLOSED)
    idle = "UPDATE conversations SET last_activity = now() - interval '2 days' WHERE id = %s"
    await owner_query(database_url, idle, made["idle"].id)
    return one, two, made


async def _warm_start(
    cluster: Cluster, database_url: str, direct: redis.Redis, **settings: Any
) -> tuple[Node, WarmReport, tuple[Client, Client, dict[str, cpb.Conversation]]]:
    """Writes the conversations through one server, empties Redis, starts another; returns it, its warm-up's
    report, and what was written."""
    written = await _conversations(await cluster.start(), database_url)
    _cold(direct, *written[:2])
    node = await cluster.start(**settings)
    assert node.app.warming is not None  # started in the background by server.start, awaited here
    return node, await node.app.warming, written


async def test_a_new_server_warms_redis_with_recent_open_conversations_of_every_tenant(
    cluster: Cluster, database_url: str, direct: redis.Redis
) -> None:
    node, report, (one, two, made) = await _warm_start(cluster, database_url, direct)

    assert (report.stored, report.skipped, report.stopped) == (8, 0, "exhausted")  # 4 + 2 + 2 entries
    tenant_one, mapped = uuid.UUID(one.tenant_id), made["mapped"]
    assert _stored(direct, one) == {
        key.text
        for key in [
            *keys.conversation_keys(
                tenant_one, uuid.UUID(mapped.id), mapped.whatsapp_conversation_id, [mapped.genesys_conversation_id]
            ),
            *keys.conversation_keys(
                tenant_one, uuid.UUID(made["customer"].id), made["customer"].whatsapp_conversation_id
            ),
        ]
    }
    assert len(_stored(direct, two)) == 2
    await _reads_need_no_database(node, node.client(one), made)


async def _reads_need_no_database(node: Node, client: Client, made: dict[str, cpb.Conversation]) -> None:
    mapped, with_customer = made["mapped"], made["customer"]
    conversations = client.conversations
    got = await conversations.GetConversation(cs.GetConversationRequest(conversation_id=mapped.id))
    by_wa = await conversations.LookupConversation(
        cs.LookupConversationRequest(whatsapp_conversation_id=with_customer.whatsapp_conversation_id)
    )
    by_genesys = await conversations.LookupConversation(
        cs.LookupConversationRequest(genesys_conversation_id=mapped.genesys_conversation_id)
    )
    assert (got.conversation, by_wa.conversation, by_genesys.conversation) == (mapped, with_customer, mapped)
    reply = await outbound(client, mapped.genesys_conversation_id, content="warm route")
    assert reply.message_created and reply.conversation.id == mapped.id
    assert node.counts(Kind.CONVERSATION)[0] == 0 and node.counts(Kind.MAPPING)[0] == 0  # no load from PostgreSQL


async def test_the_warm_up_is_bounded_and_takes_the_newest_first(
    cluster: Cluster, database_url: str, direct: redis.Redis
) -> None:
    _, report, (one, two, made) = await _warm_start(cluster, database_url, direct, cache_warm_max_items=2)

    assert (report.stored, report.stopped) == (2, "max_items")
    newest = made["other tenant"]  # created last
    assert _stored(direct, two) == {
        key.text
        for key in keys.conversation_keys(
            uuid.UUID(two.tenant_id), uuid.UUID(newest.id), newest.whatsapp_conversation_id
        )
    }
    assert _stored(direct, one) == set()


async def test_no_warm_up_without_redis(server: server_mod.Server) -> None:
    assert server.app.warming is None


def test_the_warm_up_query_reads_each_tenant_through_its_activity_index(database_url: str) -> None:
    """At many rows the one cross-tenant read must not scan every conversation: per tenant, it walks
    conversations_tenant_activity from the newest activity (under row-level security, as the function's owner)."""
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute(
            "INSERT INTO tenants (id, display_name) SELECT gen_random_uuid(), 't' || n FROM generate_series(1, 10) n"
        )
        owner.execute(
            "INSERT INTO conversations (tenant_id, id, whatsapp_conversation_id, last_activity)"
            " SELECT t.id, gen_random_uuid(), 'wa-' || n, now() - n * interval '1 minute' + interval '30 seconds'"
            " FROM tenants t, generate_series(1, 5000) n"
        )
        owner.execute("VACUUM ANALYZE conversations")
        body = owner.execute("SELECT prosrc FROM pg_proc WHERE proname = 'cache_warm_conversations'").fetchone()
        assert body is not None
        owner.execute("SET ROLE statemgr_cache_warm")
        query = body[0].replace("active_since", "(now() - interval '1 hour')").replace("max_rows", "1000")
        plan = "\n".join(str(row[0]) for row in owner.execute("EXPLAIN " + query).fetchall())
        count = owner.execute("SELECT count(*) FROM (" + query + ") q").fetchone()
    assert "conversations_tenant_activity" in plan and "Seq Scan on conversations" not in plan, plan
    assert count == (600,)  # the last hour of each of the 10 tenants
