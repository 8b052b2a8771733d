"""Where a cached lookup's server CPU goes: cProfile on `statemgr serve --workers 0` (one process) under load.

    python -m bench.cache_profile [--seconds 5] [--top 40] [--conversations 5000] [--local]

Makes the conversations of bench.cache_fresh through a server of its own and reads them once (so Redis holds
them all), then starts a second server, on the same database and Redis, under `python -m cProfile`, drives a
closed loop (c=32) of cached lookups through it alone for `--seconds`, stops it with SIGTERM (cProfile writes its
figures at exit) and prints the functions with the most own time and the most cumulative time: the profile holds
the lookups and the server's start and stop, not the setup. grpc's Cython core shows as the own time of
`Context.run` (the callbacks it runs). `--local` turns the in-process tier on (the configuration without the guarantee).
cProfile slows Python code down, so read the shares, not the absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import pstats
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence

import grpc

from bench import loadgen, statemgr_server
from bench.cache_fresh import NO_GUARANTEE, lookups
from bench.loadgen import Plan
from bench.scenarios import Context
from bench.statemgr_server import Config, Database, Server
from tests.integration import processes


@contextlib.asynccontextmanager
async def profiled(db: Database, config: Config, admin_key: str, output: str) -> AsyncIterator[Server]:
    port = processes.free_port()
    command = [sys.executable, "-m", "cProfile", "-o", output, "-m", "statemgr.cli", "serve", "--workers", "0"]
    env = {**statemgr_server._environment(db, port, admin_key, config, 0), **dict(config.env)}
    process = await asyncio.create_subprocess_exec(*command, env=env, stdin=asyncio.subprocess.DEVNULL)
    server = Server(Config(workers=0, env=config.env), port, admin_key, process, command)
    try:
        for _ in range(600):
            if await statemgr_server._serving(server.target):
                break
            await asyncio.sleep(0.1)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_profile", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--conversations", type=int, default=5_000)
    parser.add_argument("--local", action="store_true", help="with the in-process tier (no guarantee)")
    args = parser.parse_args(argv)
    config = Config(workers=1, env=NO_GUARANTEE if args.local else ())
    with tempfile.NamedTemporaryFile(suffix=".prof") as output:
        async with statemgr_server.database() as db, statemgr_server.running(db, config) as setup:
            async with statemgr_server.channels(setup, 1) as channels:
                made = await lookups(Context(channels, setup.admin_key, 0), args.conversations)
            async with profiled(db, config, setup.admin_key, output.name) as server:
                async with grpc.aio.insecure_channel(server.target) as channel:
                    call = made.through(channel)
                    plan = Plan(args.seconds, 0.5, None, 32, 1000)
                    case = loadgen.Case("profile", None, "cached lookups", call, modes=("closed",))
                    [result] = await loadgen.measure(case, plan)
        print(f"{result.ok} calls at {result.achieved_rate:,.0f}/s under cProfile", file=sys.stderr)
        text = io.StringIO()
        stats = pstats.Stats(output.name, stream=text)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        print(text.getvalue())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
