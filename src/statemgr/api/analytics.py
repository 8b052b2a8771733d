"""AnalyticsService: figures from the rollups (statemgr.analytics), the live view, and the service's health."""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import psycopg
import psycopg_pool
from google.protobuf import duration_pb2

from statemgr.analytics import periods, queries
from statemgr.analytics.periods import Period
from statemgr.analytics.queries import Durations, Totals
from statemgr.api import convert, principal
from statemgr.app import App
from statemgr.domain import validation
from statemgr.domain.errors import InvalidArgument, Unavailable
from statemgr.store.db import Pipelined
from statemgr.v1 import analytics_service_pb2 as pb
from statemgr.v1 import analytics_service_pb2_grpc as pb_grpc
from statemgr.v1 import conversation_pb2

_SIZES = {pb.BUCKET_SIZE_HOUR: "hour", pb.BUCKET_SIZE_DAY: "day", pb.BUCKET_SIZE_WEEK: "week"}
_STATES = {
    "active": conversation_pb2.CONVERSATION_STATE_ACTIVE,
    "waiting": conversation_pb2.CONVERSATION_STATE_WAITING,
    "error": conversation_pb2.CONVERSATION_STATE_ERROR,
}
_CHECK_TIMEOUT = 1.0


class AnalyticsServicer(pb_grpc.AnalyticsServiceServicer):
    def __init__(self, app: App) -> None:
        self._app = app
        self._db = app.db

    async def GetConversationMetrics(
        self, request: pb.GetConversationMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetConversationMetricsResponse:
        tenant_id = principal.tenant_id()
        async with self._reading(tenant_id, request.range, request.time_zone) as (reads, period):
            pending = await queries.tenant_totals(reads.conn, tenant_id, period)
            pending_codes = await queries.error_codes(reads.conn, tenant_id, period)
            pending_open = await queries.open_now(reads.conn, tenant_id)
            await reads.commit()
            totals, codes, open_now = await pending.result(), await pending_codes.result(), await pending_open.result()
        c = totals.counts
        closed = c["closed"]
        return pb.GetConversationMetricsResponse(
            range=_range(period),
            time_zone=period.zone.key,
            opened_conversations=c["opened"],
            closed_conversations=closed,
            open_conversations=sum(open_now.values()),
            duration=_stats(totals.durations("duration", "closed")),
            first_response=_stats(totals.durations("first_response")),
            response=_stats(totals.durations("response")),
            average_duration=_duration(c["duration_us"] / closed if closed else None),
            average_first_response=_duration(totals.durations("first_response").average_us),
            average_response=_duration(totals.durations("response").average_us),
            average_messages=_ratio(c["closed_inbound"] + c["closed_outbound"], closed),
            average_inbound_messages=_ratio(c["closed_inbound"], closed),
            average_outbound_messages=_ratio(c["closed_outbound"], closed),
            delivery=_funnel(totals, codes),
            replies_after_window=c["late_replies"],
        )

    async def GetConversationVolume(
        self, request: pb.GetConversationVolumeRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetConversationVolumeResponse:
        tenant_id = principal.tenant_id()
        size = _bucket_size(request)
        interval = (
            validation.duration(request.interval.seconds, request.interval.nanos, "interval")
            if request.HasField("interval")
            else None
        )
        async with self._reading(tenant_id, request.range, request.time_zone) as (reads, period):
            starts = periods.bucket_starts(period, size, interval)
            pending = await queries.volume(reads.conn, tenant_id, period, starts)
            await reads.commit()
            sums = await pending.result()
        ends = [*starts[1:], period.end]
        return pb.GetConversationVolumeResponse(
            range=_range(period),
            time_zone=period.zone.key,
            buckets=[
                pb.VolumeBucket(
                    start_time=convert.timestamp(start),
                    end_time=convert.timestamp(end),
                    opened=s["opened"],
                    closed=s["closed"],
                    inbound_messages=s["inbound"],
                    outbound_messages=s["outbound"],
                )
                for start, end, s in zip(starts, ends, sums, strict=True)
            ],
        )

    async def GetAgentPerformance(
        self, request: pb.GetAgentPerformanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAgentPerformanceResponse:
        tenant_id = principal.tenant_id()
        agent = validation.parse_uuid(request.agent_id, "agent_id") if request.agent_id else None
        async with self._reading(tenant_id, request.range, request.time_zone) as (reads, period):
            pending = await queries.agent_totals(reads.conn, tenant_id, period, agent)
            await reads.commit()
            found = await pending.result()
        found.sort(key=lambda t: str(t.agent_id))
        return pb.GetAgentPerformanceResponse(range=_range(period), agents=[_agent(t) for t in found])

    async def GetCustomerEngagement(
        self, request: pb.GetCustomerEngagementRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerEngagementResponse:
        tenant_id = principal.tenant_id()
        async with self._reading(tenant_id, request.range, request.time_zone) as (reads, period):
            pending = await queries.tenant_totals(reads.conn, tenant_id, period)
            pending_customers = await queries.customers(reads.conn, tenant_id, period)
            await reads.commit()
            totals, customers = await pending.result(), await pending_customers.result()
        c = totals.counts
        return pb.GetCustomerEngagementResponse(
            range=_range(period),
            active_customers=customers.active,
            new_customers=customers.new,
            returning_customers=customers.returning,
            inbound_messages=c["inbound"],
            outbound_messages=c["outbound"],
            read_rate=_ratio(c["read"], c["outbound"]),
        )

    async def GetSystemHealth(
        self, request: pb.GetSystemHealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSystemHealthResponse:
        tenant_id = principal.tenant_id()
        cache_ok, broker_ok = await asyncio.gather(self._cache_ok(), self._broker_ok())
        try:
            lag = await queries.lag(self._db, tenant_id)
        except (psycopg.Error, psycopg_pool.PoolTimeout):
            return pb.GetSystemHealthResponse(database_ok=False, cache_ok=cache_ok, broker_ok=broker_ok)
        relay = bool(self._app.settings.amqp_url)
        return pb.GetSystemHealthResponse(
            database_ok=True,
            cache_ok=cache_ok,
            broker_ok=broker_ok,
            event_backlog=lag.event_backlog if relay else 0,
            publish_lag=_duration(lag.publish_lag_seconds * 1e6 if relay else 0.0),
            rollup_backlog=lag.rollup_backlog,
            rollup_lag=_duration(lag.rollup_lag_seconds * 1e6),
            leader=self._app.background is not None and self._app.background.leadership.leading.is_set(),
        )

    async def StreamLiveView(
        self, request: pb.StreamLiveViewRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamLiveViewResponse]:
        tenant_id = principal.tenant_id()
        last: tuple[object, ...] | None = None
        while True:
            try:
                view = await queries.live(self._db, tenant_id)
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                raise Unavailable("the live figures cannot be read now; retry") from exc
            update = _live(view)
            # The longest wait counts in whole seconds: while someone waits the dashboard hears about it every
            # second; otherwise only changes are sent.
            counts = tuple((s.state, s.count) for s in update.open_conversations)
            shown = (counts, update.waiting, update.oldest_waiting_age.seconds, update.messages_last_minute)
            if shown != last:
                last = shown
                yield update
            await asyncio.sleep(self._app.settings.analytics_live_seconds)

    @asynccontextmanager
    async def _reading(
        self, tenant_id: uuid.UUID, range_: pb.TimeRange, time_zone: str
    ) -> AsyncIterator[tuple[Pipelined, Period]]:
        """A pipelined transaction of the tenant, and the period asked for in the request's or the tenant's time zone.

        The tenant's zone is read in this transaction, in the round trip that also carries BEGIN (none when the
        request names a zone). The body sends its reads, then `commit` sends them with COMMIT, and reads each
        `Pending.result` while the connection is still its own: two round trips per call, one with a zone in the
        request.
        """
        start, end = _bounds(range_)
        async with self._db.pipelined(tenant_id) as transaction:
            zone = await queries.zone(transaction.conn, tenant_id, time_zone)
            yield transaction, periods.period(start, end, zone)

    async def _cache_ok(self) -> bool:
        client = self._app.cache.redis.raw
        if client is None:
            return False
        try:
            return bool(await asyncio.wait_for(client.ping(), _CHECK_TIMEOUT))
        except Exception:  # any failure of the check is the answer "not ok"
            return False

    async def _broker_ok(self) -> bool:
        """Whether RabbitMQ accepts a connection (a TCP connect to its address; false when no broker is set)."""
        url = self._app.settings.amqp_url
        if not url:
            return False
        parts = urllib.parse.urlparse(url)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname or "localhost", parts.port or 5672), _CHECK_TIMEOUT
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True


def _bounds(range_: pb.TimeRange) -> tuple[dt.datetime, dt.datetime]:
    if not range_.HasField("start_time"):
        raise InvalidArgument("range.start_time", "is required")
    if not range_.HasField("end_time"):
        raise InvalidArgument("range.end_time", "is required")
    start = validation.timestamp(range_.start_time.seconds, range_.start_time.nanos, "range.start_time")
    end = validation.timestamp(range_.end_time.seconds, range_.end_time.nanos, "range.end_time")
    return start, end


def _bucket_size(request: pb.GetConversationVolumeRequest) -> str:
    if request.bucket_size == pb.BUCKET_SIZE_UNSPECIFIED:
        if not request.HasField("interval"):
            raise InvalidArgument("bucket_size", "set bucket_size or interval")
        return ""
    size = _SIZES.get(request.bucket_size)
    if size is None:
        raise InvalidArgument("bucket_size", "is not a known bucket size")
    return size


def _agent(totals: Totals) -> pb.AgentPerformance:
    c = totals.counts
    first = totals.durations("first_response")
    return pb.AgentPerformance(
        agent_id=str(totals.agent_id),
        conversations=c["closed"],
        messages_sent=c["outbound"],
        average_first_response=_duration(first.average_us),
        transfers_in=c["transfers_in"],
        transfers_out=c["transfers_out"],
        assigned=c["assigned"],
        first_response=_stats(first),
        response=_stats(totals.durations("response")),
        replies_after_window=c["late_replies"],
    )


def _funnel(totals: Totals, codes: list[tuple[str, int]]) -> pb.DeliveryFunnel:
    c = totals.counts
    return pb.DeliveryFunnel(
        sent=c["outbound"],
        delivered=c["delivered"],
        read=c["read"],
        failed=c["failed"],
        top_error_codes=[pb.ErrorCodeCount(error_code=code, count=n) for code, n in codes],
        time_to_delivered=_stats(totals.durations("to_delivered")),
        time_to_read=_stats(totals.durations("to_read")),
    )


def _stats(durations: Durations) -> pb.DurationStats:
    return pb.DurationStats(
        count=durations.count,
        average=_duration(durations.average_us),
        p50=_duration(durations.percentile_us(0.5)),
        p90=_duration(durations.percentile_us(0.9)),
        p99=_duration(durations.percentile_us(0.99)),
    )


def _live(view: queries.Live) -> pb.StreamLiveViewResponse:
    waiting = view.open_by_state.get("waiting", 0)
    age = (view.at - view.oldest_waiting).total_seconds() * 1e6 if view.oldest_waiting else 0.0
    return pb.StreamLiveViewResponse(
        time=convert.timestamp(view.at),
        open_conversations=[
            pb.StateCount(state=_STATES[state], count=n)
            for state, n in sorted(view.open_by_state.items())
            if state in _STATES
        ],
        waiting=waiting,
        oldest_waiting_age=_duration(max(0.0, age)),
        messages_last_minute=view.messages_last_minute,
    )


def _range(period: Period) -> pb.TimeRange:
    return pb.TimeRange(start_time=convert.timestamp(period.start), end_time=convert.timestamp(period.end))


def _duration(microseconds: float | None) -> duration_pb2.Duration | None:
    if microseconds is None:
        return None
    out = duration_pb2.Duration()
    nanos = round(microseconds * 1000)
    out.seconds, out.nanos = divmod(nanos, 1_000_000_000)
    return out


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
