"""Keyset pagination: every conversation exactly once, in order, while new ones keep arriving."""

from __future__ import annotations

import asyncio
import datetime as dt

from statemgr.v1 import conversation_service_pb2 as cs
from tests.integration.conftest import Client
from tests.integration.test_conversations import count_rows, create

TOTAL = 1_000


async def create_many(client: Client, count: int, batch: int = 50) -> set[str]:
    ids: set[str] = set()
    for start in range(0, count, batch):
        created = await asyncio.gather(*(create(client) for _ in range(min(batch, count - start))))
        ids.update(c.id for c in created)
    return ids


async def test_paging_through_a_thousand_returns_each_exactly_once_while_more_arrive(
    tenant: Client, database_url: str
) -> None:
    existing = await create_many(tenant, TOTAL)
    stop = asyncio.Event()
    arrived: set[str] = set()

    async def keep_creating() -> None:
        while not stop.is_set():
            arrived.update(await create_many(tenant, 5, batch=5))

    creator = asyncio.create_task(keep_creating())
    seen: list[str] = []
    keys: list[tuple[dt.datetime, str]] = []
    token, pages = "", 0
    try:
        while True:
            page = await tenant.conversations.ListConversations(
                cs.ListConversationsRequest(page_size=37, page_token=token)
            )
            seen.extend(c.id for c in page.conversations)
            keys.extend((c.create_time.ToDatetime(), c.id) for c in page.conversations)
            pages += 1
            await asyncio.sleep(0)  # let the creator in between pages
            token = page.next_page_token
            if not token:
                break
    finally:
        stop.set()
        await creator
    assert arrived, "nothing was created while paging: the test proves nothing"
    assert len(seen) == len(set(seen)), "a conversation came twice"
    assert existing <= set(seen), f"{len(existing - set(seen))} conversations were skipped"
    assert set(seen) <= existing | arrived
    assert keys == sorted(keys, reverse=True), "not newest first"
    assert pages == -(-len(seen) // 37)
    assert await count_rows(database_url, "conversations", tenant.tenant_id) == TOTAL + len(arrived)


async def test_page_size_defaults_and_clamps(tenant: Client) -> None:
    await create_many(tenant, 60)
    default = await tenant.conversations.ListConversations(cs.ListConversationsRequest())
    assert len(default.conversations) == 50 and default.next_page_token
    rest = await tenant.conversations.ListConversations(
        cs.ListConversationsRequest(page_size=100_000, page_token=default.next_page_token)
    )
    assert len(rest.conversations) == 10 and rest.next_page_token == ""
