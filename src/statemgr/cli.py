"""statemgr serve | migrate up|down|status."""

from __future__ import annotations

import argparse
import asyncio
import sys

from statemgr import config, logs
from statemgr.app import App
from statemgr.store import migrate


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = config.load()
    logs.configure(settings.log_level)
    if args.command == "serve":
        from statemgr import server, workers

        if args.workers > 1:
            return workers.run(settings, args.workers)
        asyncio.run(server.serve(App.build(settings)))
        return 0
    return asyncio.run(_migrate(settings.direct_database_url, args))


async def _migrate(url: str, args: argparse.Namespace) -> int:
    if args.action == "up":
        if await migrate.ensure_database(url):
            print("created the database")
        for m in await migrate.up(url, args.to):
            print(f"applied {m.version:04d}_{m.name}")
    elif args.action == "down":
        for m in await migrate.down(url, None if args.all else args.steps):
            print(f"reverted {m.version:04d}_{m.name}")
    else:
        for m, applied in await migrate.status(url):
            print(f"{'applied' if applied else 'pending'}  {m.version:04d}_{m.name}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="statemgr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC server (configuration from STATEMGR_* variables)")
    serve.add_argument("--workers", type=int, default=1, help="server processes sharing the port (default 1)")
    mig = commands.add_parser("migrate", help="apply or revert database migrations")
    actions = mig.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="apply pending migrations")
    up.add_argument("--to", type=int, default=None, help="stop after this version")
    down = actions.add_parser("down", help="revert applied migrations (one by default)")
    down.add_argument("--steps", type=int, default=1)
    down.add_argument("--all", action="store_true", help="revert every migration")
    actions.add_parser("status", help="list migrations and whether each is applied")
    return parser


if __name__ == "__main__":
    sys.exit(main())
