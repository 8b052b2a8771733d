"""Read after write while Redis goes away and comes back (issue 8, defect 2): two `statemgr serve` processes reach
Redis through one TCP fault proxy; Redis is cut (or stalled), writes return OK meanwhile, Redis is restored; no read
through either process, at any time, answers the state before a write that had returned: not during the outage
(PostgreSQL answers), not when Redis is back with the old values still in it (each process replays what it could not
invalidate before it reads Redis again), and afterwards Redis serves the new values."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from google.protobuf import field_mask_pb2

from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_pb2
from statemgr.v1 import customer_service_pb2 as cus
from tests.integration import cache_fixtures, cache_paths, test_cache_fresh
from tests.integration.cache_fixtures import proxied
from tests.integration.cache_fresh import NOT_FOUND, check, found, outcome
from tests.integration.conftest import Client
from tests.integration.tcpproxy import TcpProxy
from tests.integration.test_cache_fresh import Opened, serve_env, two_processes
from tests.integration.test_conversations import create
from tests.integration.test_customers import new_wa_id, upsert

redis_url = cache_fixtures.redis_url
proxy = cache_fixtures.proxy
forget_tenants = cache_paths.forget_tenants
opened = test_cache_fresh.opened

OUTAGE = 1.0  # seconds Redis stays away: long enough for breakers to open (5 failures) and probes to fail
AFTER = 1.5  # seconds of reads after Redis is back: past the settling time, the replays and a breaker's probe


class Subject:
    """One customer and one conversation, the reads that show them, and the writes that change them."""

    def __init__(self, clients: list[Client], customer: customer_pb2.Customer, conversation: cpb.Conversation) -> None:
        self.clients = clients
        self.customer = customer
        self.conversation = conversation
        self.name = customer.name
        self.genesys_ids: list[str] = []
        self.writes = 0
        self.reads = 0

    async def write(self, via: Client) -> None:
        """A new name for the customer, a new Genesys id for the conversation; both return OK."""
        self.writes += 1
        name, genesys_id = f"name-{self.writes}", f"gen-{self.writes}-{self.conversation.id}"
        change = customer_pb2.Customer(id=self.customer.id, name=name)
        mask = field_mask_pb2.FieldMask(paths=["name"])
        await via.customers.UpdateCustomer(cus.UpdateCustomerRequest(customer=change, update_mask=mask))
        self.name = name
        mapping = cpb.Conversation(id=self.conversation.id, genesys_conversation_id=genesys_id)
        mask = field_mask_pb2.FieldMask(paths=["genesys_conversation_id"])
        await via.conversations.UpdateConversation(cs.UpdateConversationRequest(conversation=mapping, update_mask=mask))
        self.genesys_ids.append(genesys_id)

    async def read_all(self, phase: str) -> None:
        """Every read through every process must show the last write."""
        for via in self.clients:
            self.reads += 1
            by_id = await via.customers.GetCustomer(cus.GetCustomerRequest(customer_id=self.customer.id))
            check(by_id.customer.name, self.name, f"{phase}: GetCustomer", self.reads)
            by_wa = await via.customers.LookupCustomer(cus.LookupCustomerRequest(whatsapp_id=self.customer.whatsapp_id))
            check(by_wa.customer.name, self.name, f"{phase}: LookupCustomer", self.reads)
            if self.genesys_ids:
                request = cs.LookupConversationRequest(genesys_conversation_id=self.genesys_ids[-1])
                seen = found(await outcome(via.conversations.LookupConversation(request)), lambda s: s.conversation.id)
                check(seen, self.conversation.id, f"{phase}: LookupConversation by the new Genesys id", self.reads)

    async def not_found_cached(self, genesys_id: str) -> None:
        """Caches "not found" for a Genesys id about to be mapped, in every process."""
        for via in self.clients:
            request = cs.LookupConversationRequest(genesys_conversation_id=genesys_id)
            check(await outcome(via.conversations.LookupConversation(request)), NOT_FOUND, "before", self.reads)


async def _subject(opened: Opened, url: str) -> Subject:
    clients = await two_processes(opened, serve_env(opened.database_url, url))
    customer = (await upsert(clients[0], new_wa_id(), phone_number="+442079460958", name="name-0")).customer
    return Subject(clients, customer, await create(clients[0]))


async def _reads_for(seconds: float, subject: Subject, phase: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await subject.read_all(phase)
        await asyncio.sleep(0.005)


@pytest.fixture
def database_opened(opened: Opened, database_url: str) -> Opened:
    opened.database_url = database_url
    return opened


Fault = Callable[[TcpProxy], Awaitable[Any]]


async def _cut(proxy: TcpProxy) -> None:
    await proxy.cut()


async def _stall(proxy: TcpProxy) -> None:
    proxy.stall()


async def _unstall(proxy: TcpProxy) -> None:
    proxy.unstall()


@pytest.mark.parametrize(("fault", "repair"), [(_cut, TcpProxy.restore), (_stall, _unstall)], ids=["cut", "stall"])
async def test_no_stale_read_while_redis_goes_away_and_comes_back(
    database_opened: Opened, proxy: TcpProxy, redis_url: str, fault: Fault, repair: Fault
) -> None:
    subject = await _subject(database_opened, proxied(redis_url, proxy))
    await subject.read_all("warm")
    await subject.read_all("cached")
    direct = redis.Redis.from_url(redis_url)
    try:
        for outage in range(2):
            writer = subject.clients[outage % 2]
            next_genesys = f"gen-{subject.writes + 1}-{subject.conversation.id}"
            await subject.not_found_cached(next_genesys)
            await fault(proxy)
            await _reads_for(0.1, subject, "Redis away, before the write")
            await subject.write(writer)  # OK: committed; its invalidation cannot reach Redis
            await _reads_for(OUTAGE, subject, "Redis away, after the write")
            await repair(proxy)
            await _reads_for(AFTER, subject, "Redis back")
            await _until_redis_holds(direct, subject)
    finally:
        direct.close()


async def _until_redis_holds(direct: redis.Redis, subject: Subject, timeout: float = 10.0) -> None:
    """The cache is in use again: Redis holds the customer with its new name (stored by a read after the write)."""
    tenant = subject.clients[0].tenant_id
    key = f"sm:{{{tenant}}}:cust:id:{subject.customer.id}"
    deadline = time.monotonic() + timeout
    while True:
        await subject.read_all("until Redis serves again")
        value = direct.get(key)
        if value is not None and customer_pb2.Customer.FromString(value).name == subject.name:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"Redis does not hold the new value: {value!r}")
        await asyncio.sleep(0.05)
