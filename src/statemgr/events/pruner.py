"""Retention of the event log: events are deleted a while after they were published, oldest first.

How long: each tenant's event_retention (TenantService.UpdateRetentionPolicy), capped by the operator's
STATEMGR_EVENT_RETENTION_SECONDS. The tenant chooses within the operator's bound; the log is an operational buffer
for replays and reconnects, not an archive, and the cap keeps its size predictable whatever tenants ask for.

From when: with a relay (STATEMGR_AMQP_URL set), from publishing (or from being found unroutable), so an event
RabbitMQ has not yet taken is never deleted, however long the broker is down. Without a relay nothing is ever
published, so events count from their creation.

Pruning removes a prefix of each tenant's log in cursor order and records the last position removed (the tenant's
floor) in the same statement; a Subscribe cursor below the floor answers OUT_OF_RANGE, never a silent gap. An
event still waiting to be published stops the prefix there, for that tenant.
"""

from __future__ import annotations

import asyncio

import structlog

from statemgr.events import metrics
from statemgr.store import events as store
from statemgr.store.db import Connection

_log = structlog.get_logger("statemgr.events.pruner")

BATCH = 5_000


class Pruner:
    def __init__(self, interval_seconds: float, cap_seconds: float, require_published: bool) -> None:
        self._interval = interval_seconds
        self._cap = cap_seconds
        self._require_published = require_published

    async def run(self, conn: Connection) -> None:
        """Prunes every `interval_seconds` until cancelled or until `conn` fails."""
        while True:
            await self.prune(conn)
            await asyncio.sleep(self._interval)

    async def prune(self, conn: Connection) -> int:
        """One pass over every tenant; returns how many events were deleted."""
        total = 0
        for tenant_id, retention in await store.retention_periods(conn, self._cap):
            while True:
                deleted = await store.prune_tenant(conn, tenant_id, retention, self._require_published, BATCH)
                total += deleted
                if deleted < BATCH:
                    break
        if total:
            metrics.PRUNED.inc(total)
            _log.info("events_pruned", count=total)
        return total
