"""Read-after-write rounds for the fresh-read tests (test_cache_fresh*.py), against real `statemgr serve` processes.

A round: read through one client (the state before), write through another (it returns OK), read through the
first again: the answer must show the write. The clients alternate roles from round to round, so every process
both reads what another wrote and writes what another read. Each check names the round and what it saw.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from statemgr.v1 import conversation_pb2 as cpb
from statemgr.v1 import conversation_service_pb2 as cs
from statemgr.v1 import customer_pb2
from statemgr.v1 import customer_service_pb2 as cus
from statemgr.v1 import message_pb2 as mpb
from statemgr.v1 import message_service_pb2 as ms
from tests.integration.conftest import Client
from tests.integration.test_conversations import create
from tests.integration.test_customers import inbound, new_wa_id, upsert
from tests.integration.test_integration_resolve import outbound

NOT_FOUND = grpc.StatusCode.NOT_FOUND
RANKS = (mpb.MESSAGE_STATUS_SENT, mpb.MESSAGE_STATUS_DELIVERED, mpb.MESSAGE_STATUS_READ)


async def outcome(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()


class Stale(AssertionError):
    pass


def check(seen: Any, expected: Any, what: str, round_: int) -> None:
    if seen != expected:
        raise Stale(f"round {round_}: {what}: read after the write returned saw {seen!r}, not {expected!r}")


def found(answer: Any, field: Callable[[Any], Any]) -> Any:
    """`field(answer)`, or the status code the call failed with."""
    return answer if isinstance(answer, grpc.StatusCode) else field(answer)


def pairs(clients: Sequence[Client]) -> itertools.cycle[tuple[Client, Client]]:
    """(reader, writer) pairs, alternating: a, b / b, a (or round robin over more clients)."""
    n = len(clients)
    return itertools.cycle([(clients[i], clients[(i + 1) % n]) for i in range(n)])


async def genesys_mapping(clients: Sequence[Client], rounds: int) -> None:
    """LookupConversation by a new Genesys id: NOT_FOUND (cached as such), then mapped elsewhere, then found."""
    conversation = await create(clients[0])
    order = pairs(clients)
    for round_ in range(rounds):
        reader, writer = next(order)
        genesys_id = f"gen-{uuid.uuid4().hex}"
        by_genesys = cs.LookupConversationRequest(genesys_conversation_id=genesys_id)
        before = await outcome(reader.conversations.LookupConversation(by_genesys))
        check(before, NOT_FOUND, "lookup before the mapping", round_)
        mapping = cpb.Conversation(id=conversation.id, genesys_conversation_id=genesys_id)
        mask = field_mask_pb2.FieldMask(paths=["genesys_conversation_id"])
        await writer.conversations.UpdateConversation(
            cs.UpdateConversationRequest(conversation=mapping, update_mask=mask)
        )
        seen = await outcome(reader.conversations.LookupConversation(by_genesys))
        check(found(seen, lambda s: s.conversation.id), conversation.id, "lookup by the new Genesys id", round_)
        # The conversation by id and by WhatsApp id show the mapping too.
        by_id = cs.GetConversationRequest(conversation_id=conversation.id)
        seen = await reader.conversations.GetConversation(by_id)
        check(seen.conversation.genesys_conversation_id, genesys_id, "GetConversation", round_)


async def customer_update(clients: Sequence[Client], rounds: int) -> None:
    """GetCustomer and LookupCustomer (WhatsApp id, phone) see each UpdateCustomer's new name."""
    wa = new_wa_id()
    customer = (await upsert(clients[0], wa, phone_number="+442079460958", name="name-0")).customer
    reads = (
        lambda c: c.customers.GetCustomer(cus.GetCustomerRequest(customer_id=customer.id)),
        lambda c: c.customers.LookupCustomer(cus.LookupCustomerRequest(whatsapp_id=wa)),
        lambda c: c.customers.LookupCustomer(cus.LookupCustomerRequest(phone_number="020 7946 0958")),
    )
    order = pairs(clients)
    for round_ in range(rounds):
        reader, writer = next(order)
        read = reads[round_ % len(reads)]
        before = (await read(reader)).customer.name
        name = f"name-{round_ + 1}"
        change = customer_pb2.Customer(id=customer.id, name=name)
        mask = field_mask_pb2.FieldMask(paths=["name"])
        await writer.customers.UpdateCustomer(cus.UpdateCustomerRequest(customer=change, update_mask=mask))
        check((await read(reader)).customer.name, name, f"customer read {round_ % 3} (was {before})", round_)


async def message_status(clients: Sequence[Client], rounds: int) -> None:
    """LookupMessage and GetMessage see each UpdateMessageStatus (a new message every three rounds)."""
    conversation = await create(clients[0])
    order = pairs(clients)
    wamid = ""
    message_id = ""
    for round_ in range(rounds):
        reader, writer = next(order)
        if round_ % len(RANKS) == 0:
            wamid = "wamid." + uuid.uuid4().hex
            message = mpb.Message(
                conversation_id=conversation.id, direction=mpb.MESSAGE_DIRECTION_OUTBOUND, content="hi",
                whatsapp_message_id=wamid,
            )  # fmt: skip
            message_id = (await writer.messages.RecordMessage(ms.RecordMessageRequest(message=message))).message.id
        target = RANKS[round_ % len(RANKS)]
        await reader.messages.LookupMessage(ms.LookupMessageRequest(whatsapp_message_id=wamid))
        await writer.messages.UpdateMessageStatus(
            ms.UpdateMessageStatusRequest(whatsapp_message_id=wamid, status=target)
        )
        by_wamid = await reader.messages.LookupMessage(ms.LookupMessageRequest(whatsapp_message_id=wamid))
        check(by_wamid.message.status, target, "LookupMessage's status", round_)
        by_id = await reader.messages.GetMessage(ms.GetMessageRequest(message_id=message_id))
        check(by_id.message.status, target, "GetMessage's status", round_)


async def outbound_route(clients: Sequence[Client], rounds: int) -> None:
    """ResolveOutbound for a new Genesys id: NOT_FOUND (cached), then the id is mapped, then the route is there."""
    order = pairs(clients)
    for round_ in range(rounds):
        reader, writer = next(order)
        wa = new_wa_id()
        conversation = (await inbound(writer, wa)).conversation
        genesys_id = f"gen-{uuid.uuid4().hex}"
        check(await outcome(outbound(reader, genesys_id)), NOT_FOUND, "ResolveOutbound before the mapping", round_)
        mapping = cpb.Conversation(id=conversation.id, genesys_conversation_id=genesys_id)
        mask = field_mask_pb2.FieldMask(paths=["genesys_conversation_id"])
        await writer.conversations.UpdateConversation(
            cs.UpdateConversationRequest(conversation=mapping, update_mask=mask)
        )
        seen = await outcome(outbound(reader, genesys_id))
        check(found(seen, lambda s: s.whatsapp_id), wa, "ResolveOutbound after the mapping", round_)


SCENARIOS = (genesys_mapping, customer_update, message_status, outbound_route)


async def run_all(clients: Sequence[Client], rounds: int) -> None:
    """Every scenario at once (each its own rounds, in sequence): the processes also serve each other's load."""
    await asyncio.gather(*(scenario(clients, rounds) for scenario in SCENARIOS))
