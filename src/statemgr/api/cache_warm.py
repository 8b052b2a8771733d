"""The cache warm-up at start: every tenant's recently active open conversations, stored as the read paths would
store them, in the background (docs/caching.md, "Warm-up")."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping

from statemgr.api.conversations import to_proto
from statemgr.api.integration import route_proto
from statemgr.app import App
from statemgr.cache import Kind, WarmItem, WarmReport, keys
from statemgr.domain.conversations import Conversation
from statemgr.services import conversations
from statemgr.services.integration import Route


def start(app: App) -> asyncio.Task[WarmReport] | None:
    """Starts the warm-up; readiness never waits for it. None when there is nothing to warm (no Redis, or
    STATEMGR_CACHE_WARM_MAX_ITEMS is 0). The cache bounds it in items and time and stops it with itself."""
    if not app.cache.redis.enabled or app.settings.cache_warm_max_items <= 0:
        return None
    return app.cache.start_warming(items(app))


async def items(app: App) -> AsyncIterator[WarmItem]:
    """The entries of the open conversations active in the last STATEMGR_CACHE_WARM_ACTIVE_HOURS, newest first."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=app.settings.cache_warm_active_hours)
    limit = app.settings.cache_warm_max_items  # rows: each gives at least one entry, so never too few
    async with contextlib.aclosing(conversations.recently_active(app.db, since, limit)) as rows:
        async for tenant_id, conversation in rows:
            for item in conversation_items(tenant_id, conversation, app.cache.options.ttl):
                yield item


def conversation_items(
    tenant_id: uuid.UUID, conversation: Conversation, ttl: Mapping[Kind, float]
) -> Iterator[WarmItem]:
    """What the read paths cache for an open conversation: the conversation by id, by WhatsApp conversation id, and
    by its current Genesys id with that id's ResolveOutbound route (superseded ids are loaded when asked for)."""
    data = to_proto(conversation).SerializeToString()  # reply_window_open is judged again on every read
    lifetime = ttl[Kind.CONVERSATION]
    yield keys.conversation(tenant_id, conversation.id), data, lifetime
    yield keys.conversation_by_whatsapp(tenant_id, conversation.whatsapp_conversation_id), data, lifetime
    genesys_id = conversation.genesys_conversation_id
    if genesys_id:
        yield keys.conversation_by_genesys(tenant_id, genesys_id), data, lifetime
        route = Route(conversation.id, conversation.whatsapp_conversation_id, conversation.customer_id)
        yield keys.outbound_route(tenant_id, genesys_id), route_proto(route).SerializeToString(), ttl[Kind.MAPPING]
