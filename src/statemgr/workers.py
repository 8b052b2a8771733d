"""`statemgr serve --workers N`: N server processes sharing one gRPC port (SO_REUSEPORT), each with its own pools.

The workers are plain `statemgr serve` subprocesses (same environment; worker i serves metrics on the metrics port
plus i). The parent only supervises:

- SIGTERM or SIGINT: forwarded to every worker as SIGTERM; the parent waits for them (the drain and grace periods
  plus a few seconds, then SIGKILL) and exits 0 if they all stopped cleanly.
- A worker that exits on its own is a failure: the parent stops the others and exits 1. It does not restart it:
  a crash-looping worker would otherwise hide behind a healthy port, and whatever runs statemgr (Kubernetes,
  systemd, compose) already restarts, with backoff and a record, a process that exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import structlog

from statemgr import metrics
from statemgr.config import Settings

log = structlog.get_logger("statemgr.workers")

_KILL_AFTER_GRACE = 5.0


def run(settings: Settings, count: int) -> int:
    """Runs `count` workers until a signal or a worker's exit; the process exit code."""
    if metrics.split_listen(settings.listen)[1] == 0:
        log.error("workers_need_a_fixed_port", listen=settings.listen)
        return 2
    return asyncio.run(_supervise(settings, count))


async def _supervise(settings: Settings, count: int) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)  # before the workers exist: no signal can slip past them
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


async def _spawn(settings: Settings, index: int) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env["STATEMGR_METRICS_LISTEN"] = metrics.worker_listen(settings.metrics_listen, index)
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "statemgr.cli", "serve", env=env)


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
