"""statemgr serve | migrate up|down|status | events retry-unroutable."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

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
    if args.command == "events":
        return asyncio.run(_events(settings.database_url, args))
    return asyncio.run(_migrate(settings.database_url, args))


async def _events(url: str, args: argparse.Namespace) -> int:
    from statemgr.events import redeliver

    count = await redeliver.retry_unroutable(url, args.tenant)
    print(f"{count} unroutable events will be sent again in the relay's next round")
    return 0


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
    events = commands.add_parser("events", help="operate on the event log")
    event_actions = events.add_subparsers(dest="action", required=True)
    retry = event_actions.add_parser(
        "retry-unroutable", help="send events RabbitMQ returned as unroutable again now (after binding a queue)"
    )
    retry.add_argument("--tenant", type=uuid.UUID, default=None, help="only this tenant's events")
    return parser


if __name__ == "__main__":
    sys.exit(main())
