"""Shared pieces of the fault suite (tests/integration/test_faults_*.py; no tests here): the codes a call may answer
while a dependency or a process fails (docs/operations.md), a writer that keeps calling and records every outcome,
and small waits with bounds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.errors import error_info
from tests.integration.tcpproxy import TcpProxy

OK = "OK"
UNAVAILABLE = "UNAVAILABLE"
OUTCOME_UNKNOWN = "ABORTED/COMMIT_OUTCOME_UNKNOWN"
# What docs/operations.md promises a client while a dependency or a server process fails.
DOCUMENTED = {OK, UNAVAILABLE, OUTCOME_UNKNOWN}


def proxied(url: str, proxy: TcpProxy) -> str:
    """`url` with its host and port replaced by the proxy's, credentials and path kept."""
    parts = urllib.parse.urlparse(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{proxy.address}" if credentials else proxy.address
    return urllib.parse.urlunparse(parts._replace(netloc=netloc))


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urllib.parse.urlparse(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@contextlib.asynccontextmanager
async def proxy_to(url: str, default_port: int) -> AsyncIterator[TcpProxy]:
    """A started TcpProxy in front of the service at `url`; `proxied(url, proxy)` is the URL through it."""
    proxy = TcpProxy(*host_port(url, default_port))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def outcome_of(exc: grpc.aio.AioRpcError) -> str:
    """The code as the fault suite names it: ABORTED is told apart by its ErrorInfo reason."""
    if exc.code() == grpc.StatusCode.ABORTED:
        info = error_info(exc)
        return f"ABORTED/{info.reason if info else ''}"
    return str(exc.code().name)


@dataclasses.dataclass
class Outcome:
    key: str
    code: str
    started: float
    seconds: float
    result: Any = None


class Writer:
    """Calls `call(key)` from `concurrency` tasks, one after another, until stopped; records every outcome."""

    def __init__(self, call: Callable[[str], Awaitable[Any]], concurrency: int = 4, pause: float = 0.01) -> None:
        self._call = call
        self._concurrency = concurrency
        self._pause = pause
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.outcomes: list[Outcome] = []

    def start(self) -> Writer:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self._concurrency)]
        return self

    async def stop(self) -> list[Outcome]:
        self._stopping = True
        await asyncio.gather(*self._tasks)
        return self.outcomes

    async def _run(self) -> None:
        while not self._stopping:
            key = uuid.uuid4().hex
            started = time.monotonic()
            try:
                result, code = await self._call(key), OK
            except grpc.aio.AioRpcError as exc:
                result, code = None, outcome_of(exc)
            self.outcomes.append(Outcome(key, code, started, time.monotonic() - started, result))
            await asyncio.sleep(self._pause)

    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.code == OK]

    def first_ok_after(self, moment: float) -> Outcome | None:
        return min((o for o in self.ok() if o.started >= moment), key=lambda o: o.started, default=None)


def undocumented(outcomes: list[Outcome]) -> list[str]:
    return sorted({o.code for o in outcomes} - DOCUMENTED)


async def until(check: Callable[[], Awaitable[bool] | bool], bound: float, what: str) -> float:
    """Polls `check` (sync or async) until it holds; the seconds it took; fails past `bound`."""
    started = time.monotonic()
    while not await _holds(check):
        if time.monotonic() - started > bound:
            raise AssertionError(f"{what}: not within {bound} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _holds(check: Callable[[], Awaitable[bool] | bool]) -> bool:
    result = check()
    return bool(await result) if inspect.isawaitable(result) else bool(result)


async def health(target: str) -> int | None:
    """The server's overall gRPC health status, None when it does not answer."""
    async with grpc.aio.insecure_channel(target) as channel:
        with contextlib.suppress(grpc.aio.AioRpcError):
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            return int(reply.status)
    return None


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
