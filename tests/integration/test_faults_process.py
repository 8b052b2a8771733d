"""`statemgr serve` processes stopped under load: SIGTERM (every call it accepted completes, or answers UNAVAILABLE
before doing anything), SIGKILL of the process answering calls (no OK write lost; every webhook retried afterwards
completes with no duplicate, issue 13's crash test) and SIGSTOP (the client's deadline, then service again).
docs/operations.md lists the codes. SIGTERM goes to `statemgr serve` (what an orchestrator signals); SIGKILL and
SIGSTOP go to its gRPC worker, the process that answers the calls."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import timestamp_pb2

from statemgr.v1 import integration_service_pb2 as isv
from tests.integration import faults
from tests.integration.conftest import ADMIN_KEY, Client, Clients
from tests.integration.processes import ServeProcess

EXIT_BOUND = 15.0  # the default grace period (10 s) and a little


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "STATEMGR_DATABASE_URL": database_url,
        "STATEMGR_ADMIN_KEY": ADMIN_KEY,
        "STATEMGR_REDIS_URL": "",
        "STATEMGR_AMQP_URL": "",
        "STATEMGR_LOG_LEVEL": "warning",
        **extra,
    }


@pytest.fixture
async def processes() -> AsyncIterator[Callable[..., Any]]:
    """Starts `statemgr serve` processes (killed at the end) and clients for them."""
    started: list[ServeProcess] = []
    opened: list[Clients] = []

    async def start(database_url: str, **extra: str) -> tuple[ServeProcess, Clients]:
        process = ServeProcess(_env(database_url, **extra))
        started.append(process)
        await process.start()
        clients = Clients(process.port)
        opened.append(clients)
        return process, clients

    yield start
    for clients in opened:
        await clients.close()
    for process in started:
        process.kill()


def _webhook(n: int) -> isv.ResolveInboundRequest:
    """The n-th first message of a new customer, as the inbound transformer sends it (and resends it)."""
    return isv.ResolveInboundRequest(
        whatsapp_id=f"4474001{n:05d}",
        customer_name=f"Customer {n}",
        whatsapp_message_id=f"wamid.crash.{n}",
        content=f"hello {n}",
        send_time=timestamp_pb2.Timestamp(seconds=1_764_000_000 + n),
    )


async def _resolve(client: Client, n: int, timeout: float = 15.0) -> str:
    try:
        await client.integration.ResolveInbound(_webhook(n), timeout=timeout)
        return faults.OK
    except grpc.aio.AioRpcError as exc:
        return faults.outcome_of(exc)


def _messages_per_customer(database_url: str) -> dict[str, int]:
    """Every customer's WhatsApp id and how many messages its conversations hold."""
    query = """
        SELECT c.whatsapp_id, count(m.id) FROM customers c
        LEFT JOIN conversations v ON v.tenant_id = c.tenant_id AND v.customer_id = c.id
        LEFT JOIN messages m ON m.tenant_id = v.tenant_id AND m.conversation_id = v.id
        GROUP BY c.whatsapp_id"""
    with psycopg.connect(database_url) as conn:
        return {row[0]: int(row[1]) for row in conn.execute(query).fetchall()}


def _recorded(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {row[0] for row in conn.execute("SELECT whatsapp_message_id FROM messages").fetchall()}


@pytest.mark.parametrize("drain", ["0", "0.3"])
async def test_sigterm_lets_every_accepted_call_finish(
    processes: Callable[..., Any], database_url: str, drain: str
) -> None:
    process, clients = await processes(database_url, STATEMGR_SHUTDOWN_DRAIN_SECONDS=drain)
    tenant = await clients.new_tenant()
    calls = [asyncio.create_task(_resolve(tenant, n)) for n in range(50)]
    await asyncio.sleep(0.02)
    process.signal(signal.SIGTERM)
    codes = await asyncio.gather(*calls)
    assert await process.wait(EXIT_BOUND) == 0, process.stderr()

    assert set(codes) <= {faults.OK, faults.UNAVAILABLE}, f"codes: {sorted(set(codes))}"
    answered_ok = {_webhook(n).whatsapp_message_id for n, code in enumerate(codes) if code == faults.OK}
    assert _recorded(database_url) == answered_ok, "OK calls committed; refused ones did nothing"
    assert codes.count(faults.OK) == 50, f"calls sent before SIGTERM were refused: {codes.count(faults.UNAVAILABLE)}"


async def test_sigterm_under_steady_load_answers_only_documented_codes(
    processes: Callable[..., Any], database_url: str
) -> None:
    """A client that ignores readiness and keeps calling: the server stops within its grace period; every call is
    OK (and committed) or did nothing: UNAVAILABLE (SHUTTING_DOWN, or the connection refused), or CANCELLED for
    the few that reached gRPC in the instant its shutdown began, after the server had started refusing calls."""
    process, clients = await processes(database_url, STATEMGR_SHUTDOWN_GRACE_SECONDS="2")
    tenant = await clients.new_tenant()
    counter = iter(range(1_000_000))

    async def call(key: str) -> str:
        n = next(counter)
        sent[key] = _webhook(n).whatsapp_message_id
        await tenant.integration.ResolveInbound(_webhook(n), timeout=10)
        return sent[key]

    sent: dict[str, str] = {}
    writer = faults.Writer(call, concurrency=8).start()
    await asyncio.sleep(0.5)
    stopped_at = time.monotonic()
    process.signal(signal.SIGTERM)
    assert await process.wait(EXIT_BOUND) == 0, process.stderr()
    exit_seconds = time.monotonic() - stopped_at
    await asyncio.sleep(0.2)
    outcomes = await writer.stop()

    codes = collections.Counter(o.code for o in outcomes)
    print(f"stopped in {exit_seconds:.2f} s: {dict(codes)}")
    assert set(codes) <= faults.DOCUMENTED | {"CANCELLED"}, f"undocumented codes: {codes}"
    assert codes["CANCELLED"] <= 8, "more than one call per client connection cancelled at the cut"
    recorded = _recorded(database_url)
    assert {o.result for o in writer.ok()} <= recorded, "a write that answered OK is lost"
    assert not {sent[o.key] for o in outcomes if o.code != faults.OK} & recorded, "a refused call did something"
    assert exit_seconds < 2 + 3.0, "the stop overran its grace period"


async def test_sigkill_during_resolve_inbound_then_retried_webhooks_complete_once(
    processes: Callable[..., Any], database_url: str
) -> None:
    """Issue 13's crash test: SIGKILL while first messages of new customers are being resolved. Afterwards every
    call that answered OK has its message, and every customer the crash left has the message that created it (one
    transaction writes both); the transformer's retry of every other webhook completes it; each customer
    ends with exactly the message that created it, no duplicate."""
    process, clients = await processes(database_url)
    tenant = await clients.new_tenant()
    total = 120
    calls = [asyncio.create_task(_resolve(tenant, n)) for n in range(total)]
    await faults.until(lambda: sum(c.done() for c in calls) >= 10, 20.0, "the first calls answered")
    (worker,) = process.workers()
    os.kill(worker, signal.SIGKILL)
    codes = await asyncio.gather(*calls)
    assert await process.wait(EXIT_BOUND) == 1, "a worker that died takes its unit down, for a restart"

    assert set(codes) <= {faults.OK, faults.UNAVAILABLE}, f"codes: {sorted(set(codes))}"
    ok = {n for n, code in enumerate(codes) if code == faults.OK}
    assert 0 < len(ok) < total, f"the kill should land mid-load ({len(ok)} of {total} answered OK)"
    assert {_webhook(n).whatsapp_message_id for n in ok} <= _recorded(database_url), "an OK call's message is lost"
    after_crash = _messages_per_customer(database_url)
    assert set(after_crash.values()) == {1}, "one transaction: a customer exists with its first message or not at all"

    _, again = await processes(database_url)
    retry = again.with_key(tenant.api_key, tenant.tenant_id)
    retried = await asyncio.gather(*(_resolve(retry, n) for n in range(total)))
    assert set(retried) == {faults.OK}, f"retries answered {sorted(set(retried))}"
    per_customer = _messages_per_customer(database_url)
    assert per_customer == {_webhook(n).whatsapp_id: 1 for n in range(total)}, (
        "a customer without its message, or a duplicate"
    )


async def test_sigstop_costs_the_clients_deadline_then_the_process_serves_again(
    processes: Callable[..., Any], database_url: str
) -> None:
    process, clients = await processes(database_url)
    tenant = await clients.new_tenant()
    assert await _resolve(tenant, 0) == faults.OK
    (worker,) = process.workers()
    os.kill(worker, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert await _resolve(tenant, 1, timeout=1.0) == "DEADLINE_EXCEEDED"
        assert time.monotonic() - started < 2.0
    finally:
        os.kill(worker, signal.SIGCONT)

    async def served() -> bool:
        return await _resolve(tenant, 2, timeout=1.0) == faults.OK

    await faults.until(served, 5.0, "served again after SIGCONT")
    assert await _resolve(tenant, 1) == faults.OK  # the call that hit its deadline, retried: done once
    assert _messages_per_customer(database_url) == {_webhook(n).whatsapp_id: 1 for n in range(3)}
