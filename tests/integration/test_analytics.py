"""AnalyticsService end to end: seeded traffic through the API, folded by the rollup consumer, every figure compared
with plain SQL over the raw tables (analytics_reference) for several ranges and time zones; replays, restarts,
tenant isolation and bad input.

The server runs with the consumer switched off; the tests fold by driving a RollupConsumer on a connection of their
own, as the leader would (statemgr_relay), so they decide when folding happens (after `spread` moved the times).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import random
import uuid
import zoneinfo
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import duration_pb2, field_mask_pb2
from psycopg.rows import dict_row

from statemgr.analytics import consumer as consumer_mod
from statemgr.analytics import histogram
from statemgr.analytics.consumer import RollupConsumer
from statemgr.config import Settings
from statemgr.v1 import analytics_service_pb2 as apb
from statemgr.v1 import analytics_service_pb2_grpc, tenant_pb2, tenant_service_pb2
from tests.integration import analytics_reference as reference
from tests.integration import analytics_traffic as traffic
from tests.integration.conftest import Client, Clients

BAD = grpc.StatusCode.INVALID_ARGUMENT
SEED = 20261206
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, analytics_enabled=False)


async def leader_connection(database_url: str) -> psycopg.AsyncConnection[dict[str, Any]]:
    """A connection as the leader has: autocommit, statemgr_relay."""
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row)
    await conn.execute("SET ROLE statemgr_relay")
    return conn


@pytest.fixture
async def relay_conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
    conn = await leader_connection(database_url)
    yield conn
    await conn.close()


def analytics(client: Client) -> analytics_service_pb2_grpc.AnalyticsServiceStub:
    return analytics_service_pb2_grpc.AnalyticsServiceStub(client.channel)


async def fold_all(conn: psycopg.AsyncConnection[dict[str, Any]], batch: int = 1000) -> None:
    """Folds until every event of every tenant is folded. Events wait while any older transaction of the cluster
    is open (the horizon, statemgr/events/cursor.py), so "nothing to read now" is not yet "all folded"."""
    folding = RollupConsumer(batch_size=batch)
    async with asyncio.timeout(60):
        while await folding.step(conn) or await _unfolded(conn):
            await asyncio.sleep(0.01)


_UNFOLDED = """
SELECT count(*) AS n FROM events e LEFT JOIN analytics_cursors c ON c.tenant_id = e.tenant_id
WHERE (e.tx_id, e.seq) > (coalesce(c.tx_id, '0'), coalesce(c.seq, 0))
"""


async def _unfolded(conn: psycopg.AsyncConnection[dict[str, Any]]) -> int:
    row = await (await conn.execute(_UNFOLDED)).fetchone()
    return int(row["n"]) if row else 0


def period(start: dt.datetime, end: dt.datetime) -> apb.TimeRange:
    out = apb.TimeRange()
    out.start_time.FromDatetime(start)
    out.end_time.FromDatetime(end)
    return out


def us(value: duration_pb2.Duration) -> float:
    return value.seconds * 1e6 + value.nanos / 1e3


# --- comparing with the reference ---------------------------------------------------------------------------------


def check_stats(got: apb.DurationStats, want: reference.Stats | None, what: str) -> None:
    if want is None:
        assert got.count == 0, what
        return
    assert got.count == want.n, what
    assert abs(us(got.average) * 1000 - want.total_us * 1000 / want.n) <= 1, what  # to the nanosecond
    for name in ("p50", "p90", "p99"):
        exact, binned = getattr(want, name), us(getattr(got, name))
        assert histogram.bin_of(exact) == histogram.bin_of(round(binned)), (what, name, exact, binned)
        assert abs(binned - exact) <= max(500, exact * histogram.RELATIVE_ERROR), (what, name)


async def check_metrics(client: Client, database_url: str, start: dt.datetime, end: dt.datetime) -> None:
    want = reference.figures(database_url, client.tenant_id, start, end)
    stub = analytics(client)
    got = await stub.GetConversationMetrics(apb.GetConversationMetricsRequest(range=period(start, end)))
    c = want.counts.get
    assert (got.opened_conversations, got.closed_conversations) == (c("opened", 0), c("closed", 0))
    check_stats(got.duration, want.stats.get("duration"), "duration")
    check_stats(got.first_response, want.stats.get("first_response"), "first_response")
    check_stats(got.response, want.stats.get("response"), "response")
    if c("closed", 0):
        assert got.average_inbound_messages == c("closed_inbound", 0) / c("closed", 0)
        assert got.average_outbound_messages == c("closed_outbound", 0) / c("closed", 0)
    funnel = got.delivery
    assert (funnel.sent, funnel.delivered, funnel.read, funnel.failed) == (
        c("outbound", 0),
        c("delivered", 0),
        c("read", 0),
        c("failed", 0),
    )
    assert [(e.error_code, e.count) for e in funnel.top_error_codes] == want.error_codes
    check_stats(funnel.time_to_delivered, want.stats.get("to_delivered"), "to_delivered")
    check_stats(funnel.time_to_read, want.stats.get("to_read"), "to_read")
    assert got.replies_after_window == c("late_replies", 0)

    engagement = await stub.GetCustomerEngagement(apb.GetCustomerEngagementRequest(range=period(start, end)))
    assert (engagement.active_customers, engagement.new_customers, engagement.returning_customers) == want.customers
    assert (engagement.inbound_messages, engagement.outbound_messages) == (c("inbound", 0), c("outbound", 0))

    agents = await stub.GetAgentPerformance(apb.GetAgentPerformanceRequest(range=period(start, end)))
    seen = {a.agent_id: a for a in agents.agents}
    for agent in set(seen) | set(want.agent_counts):
        a, counts = seen.get(agent, apb.AgentPerformance()), want.agent_counts.get(agent, {})
        got_counts = (a.conversations, a.messages_sent, a.transfers_in, a.transfers_out, a.assigned)
        names = ("closed", "outbound", "transfers_in", "transfers_out", "assigned")
        assert got_counts == tuple(counts.get(n, 0) for n in names), agent
        assert a.replies_after_window == counts.get("late_replies", 0)
        stats = want.agent_stats.get(agent, {})
        check_stats(a.first_response, stats.get("first_response"), f"{agent} first_response")
        check_stats(a.response, stats.get("response"), f"{agent} response")


async def check_volume(client: Client, database_url: str, start: dt.datetime, end: dt.datetime, zone: str) -> None:
    request = apb.GetConversationVolumeRequest(
        range=period(start, end), bucket_size=apb.BUCKET_SIZE_DAY, time_zone=zone
    )
    got = await analytics(client).GetConversationVolume(request)
    tz = zoneinfo.ZoneInfo(zone)
    buckets = [(b.start_time.ToDatetime(dt.UTC), b.end_time.ToDatetime(dt.UTC), b) for b in got.buckets]
    assert buckets[0][0] == start and buckets[-1][1] == end
    for (_, end_a, _), (start_b, _, _) in itertools.pairwise(buckets):
        assert end_a == start_b
        assert start_b.astimezone(tz).time() == dt.time(0), "a day bucket starts at local midnight"
    lengths = {b_end - b_start for b_start, b_end, _ in buckets[1:-1]}
    assert lengths <= {dt.timedelta(hours=23), dt.timedelta(hours=24), dt.timedelta(hours=25)}
    for b_start, b_end, bucket in buckets:
        assert (bucket.opened, bucket.closed) == reference.volume(database_url, client.tenant_id, b_start, b_end)


# --- tests --------------------------------------------------------------------------------------------------------

RANGES = [
    (traffic.ANCHOR - dt.timedelta(days=1), traffic.ANCHOR + dt.timedelta(days=17)),  # everything
    (traffic.ANCHOR + dt.timedelta(days=2, hours=5), traffic.ANCHOR + dt.timedelta(days=9, hours=13)),  # days + hours
    (traffic.ANCHOR + dt.timedelta(days=4, hours=7), traffic.ANCHOR + dt.timedelta(days=4, hours=19)),  # hours only
    (traffic.ANCHOR + dt.timedelta(days=6), traffic.ANCHOR + dt.timedelta(days=7)),  # one UTC day
]


async def test_every_figure_matches_sql_over_the_raw_tables(
    clients: Clients, database_url: str, relay_conn: psycopg.AsyncConnection[dict[str, Any]]
) -> None:
    tenant = await clients.new_tenant("Analytics")
    played = await traffic.play(tenant, SEED, conversations=200)
    traffic.spread(database_url, tenant.tenant_id, played, SEED)
    await fold_all(relay_conn, batch=97)  # a batch size that splits conversations' events across batches
    for start, end in RANGES:
        await check_metrics(tenant, database_url, start, end)
    whole = RANGES[0]
    for zone in ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"):
        await check_volume(tenant, database_url, whole[0], whole[1], zone)


async def test_a_restart_mid_stream_and_a_full_replay_give_the_same_figures(
    clients: Clients, database_url: str, relay_conn: psycopg.AsyncConnection[dict[str, Any]]
) -> None:
    tenant = await clients.new_tenant("Replay")
    played = await traffic.play(tenant, SEED + 1, conversations=60)
    traffic.spread(database_url, tenant.tenant_id, played, SEED + 1)
    # Killed mid-stream, several times: a consumer cancelled at a random moment and its connection dropped (as a
    # leader process dies), then another one started on a connection of its own.
    rng = random.Random(SEED)
    for _ in range(5):
        conn = await leader_connection(database_url)
        task = asyncio.create_task(RollupConsumer(poll_seconds=0.01, batch_size=rng.randint(5, 40)).run(conn))
        await asyncio.sleep(rng.uniform(0.01, 0.2))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await conn.close()
    await fold_all(relay_conn, batch=13)
    first = await all_figures(tenant)
    await check_metrics(tenant, database_url, *RANGES[0])

    await consumer_mod.reset(relay_conn, uuid.UUID(tenant.tenant_id))  # a full replay from the start of the log
    await fold_all(relay_conn, batch=500)
    assert await all_figures(tenant) == first


async def test_two_consumers_at_once_never_fold_an_event_twice(
    clients: Clients, database_url: str, relay_conn: psycopg.AsyncConnection[dict[str, Any]]
) -> None:
    tenant = await clients.new_tenant("Two leaders")
    played = await traffic.play(tenant, SEED + 2, conversations=40)
    traffic.spread(database_url, tenant.tenant_id, played, SEED + 2)
    other = await leader_connection(database_url)
    try:
        await asyncio.gather(fold_all(relay_conn, batch=7), fold_all(other, batch=11))
    finally:
        await other.close()
    await fold_all(relay_conn)
    await check_metrics(tenant, database_url, *RANGES[0])


async def all_figures(client: Client) -> list[Any]:
    stub, whole = analytics(client), period(*RANGES[0])
    return [
        await stub.GetConversationMetrics(apb.GetConversationMetricsRequest(range=whole)),
        await stub.GetCustomerEngagement(apb.GetCustomerEngagementRequest(range=whole)),
        await stub.GetAgentPerformance(apb.GetAgentPerformanceRequest(range=whole)),
        await stub.GetConversationVolume(
            apb.GetConversationVolumeRequest(range=whole, bucket_size=apb.BUCKET_SIZE_HOUR)
        ),
    ]


async def test_tenants_never_see_each_others_figures(
    clients: Clients, database_url: str, relay_conn: psycopg.AsyncConnection[dict[str, Any]]
) -> None:
    busy, quiet = await clients.new_tenant("Busy"), await clients.new_tenant("Quiet")
    played = await traffic.play(busy, SEED + 3, conversations=30)
    traffic.spread(database_url, busy.tenant_id, played, SEED + 3)
    await fold_all(relay_conn)
    whole = period(*RANGES[0])
    busy_metrics = await analytics(busy).GetConversationMetrics(apb.GetConversationMetricsRequest(range=whole))
    assert busy_metrics.opened_conversations == 30
    metrics = await analytics(quiet).GetConversationMetrics(apb.GetConversationMetricsRequest(range=whole))
    assert (metrics.opened_conversations, metrics.delivery.sent, metrics.open_conversations) == (0, 0, 0)
    agents = await analytics(quiet).GetAgentPerformance(apb.GetAgentPerformanceRequest(range=whole))
    assert list(agents.agents) == []
    for agent in played.agents:  # another tenant's agent is simply unknown here
        request = apb.GetAgentPerformanceRequest(range=whole, agent_id=agent)
        assert list((await analytics(quiet).GetAgentPerformance(request)).agents) == []
    engagement = await analytics(quiet).GetCustomerEngagement(apb.GetCustomerEngagementRequest(range=whole))
    assert (engagement.active_customers, engagement.new_customers) == (0, 0)


async def test_bad_ranges_and_arguments_are_invalid_argument_naming_the_field(clients: Clients) -> None:
    tenant = await clients.new_tenant("Bad input")
    stub, now = analytics(tenant), dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    day, hour = period(now, now + dt.timedelta(days=1)), dt.timedelta(hours=1)
    metrics, volume = apb.GetConversationMetricsRequest, apb.GetConversationVolumeRequest
    no_end = apb.TimeRange(start_time=day.start_time)
    cases: list[tuple[Any, Any, str]] = [
        (stub.GetConversationMetrics, metrics(), "range.start_time"),
        (stub.GetConversationMetrics, metrics(range=no_end), "range.end_time"),
        (stub.GetConversationMetrics, metrics(range=period(now, now - hour)), "range.end_time"),
        (stub.GetConversationMetrics, metrics(range=period(now, now)), "range.end_time"),
        (
            stub.GetCustomerEngagement,
            apb.GetCustomerEngagementRequest(range=period(now, now + 401 * 24 * hour)),
            "range",
        ),
        (stub.GetConversationMetrics, metrics(range=day, time_zone="Mars/Olympus"), "time_zone"),
        (stub.GetAgentPerformance, apb.GetAgentPerformanceRequest(range=day, agent_id="bob"), "agent_id"),
        (stub.GetConversationVolume, volume(range=day), "bucket_size"),
        (stub.GetConversationVolume, volume(range=day, interval=duration_pb2.Duration(seconds=90)), "interval"),
        (stub.GetConversationVolume, volume(range=day, bucket_size=7), "bucket_size"),
    ]
    for call, request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request)
        assert caught.value.code() == BAD, field
        assert field in (caught.value.details() or ""), (field, caught.value.details())
    empty = await stub.GetAgentPerformance(
        apb.GetAgentPerformanceRequest(range=period(now, now + dt.timedelta(days=1)), agent_id=str(uuid.uuid4()))
    )
    assert list(empty.agents) == []  # an agent with no figures: an empty answer


async def test_the_tenant_time_zone_is_a_setting_the_figures_follow(clients: Clients) -> None:
    admin = clients.admin()
    created = await admin.tenants.CreateTenant(
        tenant_service_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="TZ", time_zone="Asia/Tokyo"))
    )
    assert created.tenant.time_zone == "Asia/Tokyo"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await admin.tenants.UpdateTenant(
            tenant_service_pb2.UpdateTenantRequest(
                tenant=tenant_pb2.Tenant(id=created.tenant.id, time_zone="Nowhere/Else"),
                update_mask=field_mask_pb2.FieldMask(paths=["time_zone"]),
            )
        )
    assert caught.value.code() == BAD
    updated = await admin.tenants.UpdateTenant(
        tenant_service_pb2.UpdateTenantRequest(
            tenant=tenant_pb2.Tenant(id=created.tenant.id, time_zone="America/New_York"),
            update_mask=field_mask_pb2.FieldMask(paths=["time_zone"]),
        )
    )
    assert updated.tenant.time_zone == "America/New_York"
    key = await admin.tenants.CreateApiKey(tenant_service_pb2.CreateApiKeyRequest(tenant_id=created.tenant.id))
    client = clients.with_key(key.secret, created.tenant.id)
    start = dt.datetime(2026, 10, 30, 12, tzinfo=dt.UTC)
    volume = await analytics(client).GetConversationVolume(
        apb.GetConversationVolumeRequest(
            range=period(start, start + dt.timedelta(days=4)), bucket_size=apb.BUCKET_SIZE_DAY
        )
    )
    assert volume.time_zone == "America/New_York"
    starts = [b.start_time.ToDatetime(dt.UTC) for b in volume.buckets]
    # New York midnights: 04:00 UTC in daylight time, 05:00 UTC from November 1st (a 25-hour day)
    assert starts == [
        start,
        dt.datetime(2026, 10, 31, 4, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 3, 5, tzinfo=dt.UTC),
    ]
