"""Numbered plain-SQL migrations, each with its down, applied under an advisory lock.

Files: sql/NNNN_name.up.sql and sql/NNNN_name.down.sql. Each file runs in one transaction together with the
bookkeeping row, so a failed migration leaves nothing behind. Two replicas starting at once serialise on the lock;
the second finds nothing left to do.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
import urllib.parse
from pathlib import Path

import psycopg
from psycopg import sql

# Any constant works as long as every statemgr process uses the same one; this is "statemgr" in ASCII.
_LOCK_KEY = 0x73746174656D6772
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")
_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: str
    down: str


def migrations_dir() -> Path:
    """sql/ inside the installed package, or at the repository root for an editable install."""
    packaged = Path(str(importlib.resources.files("statemgr"))) / "sql"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "sql"


def load(directory: Path | None = None) -> list[Migration]:
    """All migrations in version order; each must have both an up and a down file."""
    files: dict[int, dict[str, str]] = {}
    names: dict[int, str] = {}
    for path in sorted((directory or migrations_dir()).glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise ValueError(f"unexpected file in migrations: {path.name}")
        version = int(match.group(1))
        names[version] = match.group(2)
        files.setdefault(version, {})[match.group(3)] = path.read_text()
    missing = [v for v, parts in files.items() if set(parts) != {"up", "down"}]
    if missing:
        raise ValueError(f"migrations without both up and down: {missing}")
    return [Migration(v, names[v], files[v]["up"], files[v]["down"]) for v in sorted(files)]


async def applied(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[int]:
    await conn.execute(_CREATE_TABLE)
    cur = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
    return [int(str(row[0])) for row in await cur.fetchall()]


async def ensure_database(url: str) -> bool:
    """Creates the database of `url` when it does not exist yet (zero-setup local runs); True if it did."""
    try:
        async with await psycopg.AsyncConnection.connect(url):
            return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    name = urllib.parse.urlparse(url).path.lstrip("/")
    maintenance = urllib.parse.urlunparse(urllib.parse.urlparse(url)._replace(path="/postgres"))
    async with await psycopg.AsyncConnection.connect(maintenance, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


async def up(url: str, target: int | None = None) -> list[Migration]:
    """Applies every pending migration up to `target` (all by default); returns those applied."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            done = set(await applied(conn))
            todo = [m for m in load() if m.version not in done and (target is None or m.version <= target)]
            for migration in todo:
                async with conn.transaction():
                    await conn.execute(migration.up.encode())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
            return todo
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def down(url: str, steps: int | None = 1) -> list[Migration]:
    """Reverts the last `steps` applied migrations (all when steps is None); returns those reverted."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            done = await applied(conn)
            by_version = {m.version: m for m in load()}
            todo = [by_version[v] for v in reversed(done)][: steps if steps is not None else None]
            for migration in todo:
                async with conn.transaction():
                    await conn.execute(migration.down.encode())
                    await conn.execute("DELETE FROM schema_migrations WHERE version = %s", (migration.version,))
            return todo
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def status(url: str) -> list[tuple[Migration, bool]]:
    """Every known migration and whether it is applied."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        done = set(await applied(conn))
    return [(m, m.version in done) for m in load()]
