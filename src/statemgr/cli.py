"""statemgr serve | migrate up|down|status | retention run | archive restore | events retry-unroutable (and
worker: one gRPC process of serve, started by it)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from statemgr import config, logs
from statemgr.app import App, Role
from statemgr.store import embedded, migrate


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = config.load()
    logs.configure(settings.log_level)
    if args.command != "worker":  # a worker inherits the URL its serve process settled on
        settings = embedded.with_database(settings)
    if args.command in ("serve", "worker"):
        return _serve(settings, args)
    if args.command == "events":
        return asyncio.run(_events(settings.direct_database_url, args))
    if args.command in ("retention", "archive"):
        from statemgr.jobs import cli as jobs_cli

        return asyncio.run(jobs_cli.main(settings, args))
    return asyncio.run(_migrate(settings.direct_database_url, args))


async def _events(url: str, args: argparse.Namespace) -> int:
    from statemgr.events import redeliver

    count = await redeliver.retry_unroutable(url, args.tenant)
    print(f"{count} unroutable events will be sent again in the relay's next round")
    return 0


def _serve(settings: config.Settings, args: argparse.Namespace) -> int:
    from statemgr import server, workers

    if args.command == "worker":
        workers.die_with_parent(args.parent)
        asyncio.run(server.serve(App.build(settings, Role.CALLS)))
    elif args.workers < 0:
        raise SystemExit("--workers must be 0 or more")
    elif args.workers == 0:
        asyncio.run(server.serve(App.build(settings, Role.ALL)))
    else:
        return workers.run(settings, args.workers)
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
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="gRPC processes sharing the port, beside the background process that runs the leader duties"
        " (default 1; 0: one process does everything)",
    )
    worker = commands.add_parser("worker", help="one gRPC process of `statemgr serve` (serve starts these)")
    worker.add_argument("--parent", type=int, required=True, help="pid of the serve process; the worker dies with it")
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
    from statemgr.jobs import cli as jobs_cli

    jobs_cli.add_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
