"""`statemgr serve --workers N`: the background process, parent of N gRPC worker processes sharing one port.

The parent runs the background (statemgr.background: the leader duties, the cache warm-up) and supervises; the
workers are `statemgr worker` subprocesses (same environment) that answer calls and Subscribe streams on the port
(SO_REUSEPORT), each with its own pools. Worker i serves metrics on the metrics port plus i, the parent on the
metrics port plus N. So no interpreter that answers calls ever relays, prunes or warms (docs/processes.md).

- SIGTERM or SIGINT: forwarded to every worker as SIGTERM; the parent waits for them (the drain and grace periods
  plus a few seconds, then SIGKILL), then stops the background, and exits 0 if every worker stopped cleanly.
- A worker that exits on its own is a failure: the parent stops the others and exits 1. It does not restart it:
  a crash-looping worker would otherwise hide behind a healthy port, and whatever runs statemgr (Kubernetes,
  systemd, compose) already restarts, with backoff and a record, a process that exits non-zero.
- The parent killed (SIGKILL, out of memory): each worker gets SIGTERM from the kernel (PR_SET_PDEATHSIG) and stops
  gracefully, so no orphan keeps the port; the leadership goes with the parent's connection to another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import os
import signal
import sys

import structlog

from statemgr import metrics
from statemgr.app import App, Role
from statemgr.config import Settings

log = structlog.get_logger("statemgr.workers")

_KILL_AFTER_GRACE = 5.0
_PR_SET_PDEATHSIG = 1


def run(settings: Settings, count: int) -> int:
    """Runs the background and `count` workers until a signal or a worker's exit; the process exit code."""
    if count > 1 and metrics.split_listen(settings.listen)[1] == 0:
        log.error("workers_need_a_fixed_port", listen=settings.listen)
        return 2
    return asyncio.run(_supervise(settings, count))


def die_with_parent(parent: int) -> None:
    """Asks the kernel for SIGTERM when the parent dies; exits at once if it already has (Linux only)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        raise SystemExit("the parent statemgr serve is gone")


async def _supervise(settings: Settings, count: int) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)  # before the workers exist: no signal can slip past them
    background = App.build(_background_settings(settings, count), Role.BACKGROUND)
    await background.start()
    try:
        return await _run_workers(settings, count, stopping)
    finally:
        await background.stop()


async def _run_workers(settings: Settings, count: int, stopping: asyncio.Event) -> int:
    workers = [await _spawn(settings, index) for index in range(count)]
    log.info("workers_started", pids=[w.pid for w in workers], listen=settings.listen)
    exits = [asyncio.create_task(w.wait()) for w in workers]
    signalled = asyncio.create_task(stopping.wait())
    await asyncio.wait([*exits, signalled], return_when=asyncio.FIRST_COMPLETED)
    crashed = not stopping.is_set()
    if crashed:
        log.error("worker_exited", codes=[w.returncode for w in workers if w.returncode is not None])
    signalled.cancel()
    # A worker's stop takes the drain period, then at most the grace period, then a little to close its pools.
    await _stop_all(workers, settings.shutdown_drain_seconds + settings.shutdown_grace_seconds + _KILL_AFTER_GRACE)
    codes = [w.returncode for w in workers]
    log.info("workers_stopped", codes=codes)
    return 1 if crashed or any(code != 0 for code in codes) else 0


def _background_settings(settings: Settings, count: int) -> Settings:
    return dataclasses.replace(settings, metrics_listen=metrics.worker_listen(settings.metrics_listen, count))


async def _spawn(settings: Settings, index: int) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env["STATEMGR_METRICS_LISTEN"] = metrics.worker_listen(settings.metrics_listen, index)
    command = [sys.executable, "-m", "statemgr.cli", "worker", "--parent", str(os.getpid())]
    return await asyncio.create_subprocess_exec(*command, env=env)


async def _stop_all(workers: list[asyncio.subprocess.Process], patience: float) -> None:
    for worker in workers:
        if worker.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(patience):
            await asyncio.gather(*(w.wait() for w in workers))
    except TimeoutError:
        for worker in workers:
            if worker.returncode is None:
                log.error("worker_killed", pid=worker.pid)
                with contextlib.suppress(ProcessLookupError):
                    worker.kill()
        await asyncio.gather(*(w.wait() for w in workers))
