"""`statemgr retention run` and `statemgr archive restore`: the lifecycle by hand, with progress on the terminal."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import TextIO

from statemgr.config import Settings
from statemgr.domain.errors import FailedPrecondition, StatemgrError
from statemgr.jobs.archive_store import ArchiveStore, ArchiveUnavailable
from statemgr.jobs.restore import restore_conversation
from statemgr.jobs.retention import RetentionJob, RunSummary, TenantSummary, UnknownTenant
from statemgr.store.db import Database

EXIT_FAILED = 1  # a tenant's run stopped (the archive store unreachable): its rows are kept, retried next run
EXIT_NOT_FOUND = 2
EXIT_BUSY = 3  # another run holds the lock
EXIT_CONFLICT = 4  # a restore refused: the conversation (or a key of its rows) is live; nothing changed


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = commands.add_parser("retention", help="apply the tenants' retention policies")
    actions = retention.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="archive what is due, delete expired archives, then print a summary")
    run.add_argument("--tenant", type=uuid.UUID, default=None, help="only this tenant (default: every tenant)")
    run.add_argument("--dry-run", action="store_true", help="count what is due; change nothing")
    archive = commands.add_parser("archive", help="archived conversations")
    archive_actions = archive.add_subparsers(dest="action", required=True)
    restore = archive_actions.add_parser("restore", help="put an archived conversation back into the live tables")
    restore.add_argument("--tenant", type=uuid.UUID, required=True)
    restore.add_argument("--conversation", type=uuid.UUID, required=True)


async def main(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    db = Database(settings.database_url, settings.db_role, 1, 4)
    await db.open()
    try:
        job = RetentionJob(settings, db)
        async with job.started():
            if args.command == "retention":
                return await _run(job, args, out)
            return await _restore(settings, db, job, args, out)
    finally:
        await db.close()


async def _run(job: RetentionJob, args: argparse.Namespace, out: TextIO) -> int:
    started = time.monotonic()

    def progress(summary: TenantSummary) -> None:
        rows = sum(summary.rows.values())
        rate = rows / max(time.monotonic() - started, 1e-9)
        print(
            f"tenant {summary.tenant_id}: batch {summary.batches}, {summary.conversations} conversations, "
            f"{rows} rows, {summary.bytes} bytes ({rate:,.0f} rows/s)",
            file=out,
            flush=True,
        )

    try:
        summary = await job.run_once(args.tenant, args.dry_run, progress)
    except UnknownTenant as exc:
        print(f"no tenant {exc}", file=out)
        return EXIT_NOT_FOUND
    if summary.skipped:
        print("another retention run is in progress; nothing done", file=out)
        return EXIT_BUSY
    _print_summary(summary, args.dry_run, out)
    return 0 if summary.ok else EXIT_FAILED


def _print_summary(summary: RunSummary, dry_run: bool, out: TextIO) -> None:
    for t in summary.tenants:
        if dry_run:
            print(f"tenant {t.tenant_id}: {t.due} conversations due, {t.expired_due} archive batches expired", file=out)
            continue
        tables = ", ".join(f"{name} {count}" for name, count in sorted(t.rows.items())) or "nothing"
        line = (
            f"tenant {t.tenant_id}: archived {t.conversations} conversations in {t.batches} batches ({tables}; "
            f"{t.bytes} bytes), {t.expired} expired batches deleted, {t.abandoned} batches abandoned"
        )
        if t.erasures_finished:
            line += f", {t.erasures_finished} erasures finished"
        print(line + (f"; FAILED: {t.error}" if t.error else ""), file=out)
    failed = sum(1 for t in summary.tenants if t.error)
    print(f"{len(summary.tenants)} tenants, {failed} failed, {summary.seconds:.1f} s", file=out)


async def _restore(settings: Settings, db: Database, job: RetentionJob, args: argparse.Namespace, out: TextIO) -> int:
    archive = ArchiveStore.from_settings(settings)
    try:
        restored = await restore_conversation(db, archive, job.cache, args.tenant, args.conversation)
    except FailedPrecondition as exc:
        print(f"cannot restore ({exc.reason}): {exc}", file=out)
        return EXIT_CONFLICT
    except StatemgrError as exc:
        print(f"cannot restore: {exc}", file=out)
        return EXIT_NOT_FOUND
    except ArchiveUnavailable as exc:
        print(f"archive store unavailable: {exc}", file=out)
        return EXIT_FAILED
    tables = ", ".join(f"{name} {count}" for name, count in restored.rows.items())
    print(f"restored conversation {args.conversation} from batch {restored.batch_id}: {tables}", file=out)
    return 0
