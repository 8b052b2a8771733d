"""A PgBouncer of the test's own, in transaction pooling mode, on a free local port in front of the test PostgreSQL.

Debian's `pgbouncer` (installed by .ci/run). It refuses to run as root, so as root it is started with `-u postgres`
(its files are made readable to that user). It proxies every database (`* =`), with `pool_size` server connections
per database and user: fewer than the service's pool opens, so clients share server connections.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.integration.processes import free_port

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def version() -> tuple[int, int]:
    out = subprocess.run([BINARY, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    found = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    assert found, out
    return int(found[1]), int(found[2])


def handles_prepared_statements() -> bool:
    """PgBouncer 1.21 tracks protocol-level prepared statements in transaction mode (max_prepared_statements)."""
    return version() >= (1, 21)


class PgBouncer:
    def __init__(self, upstream_url: str, pool_size: int) -> None:
        self.port = free_port()
        self._upstream = urllib.parse.urlparse(upstream_url)
        self._pool_size = pool_size
        self._dir = Path(tempfile.mkdtemp(prefix="statemgr-pgbouncer-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.user = self._upstream.username or os.environ.get("PGUSER") or _login_name()

    def url(self, database: str) -> str:
        """The same database, through this PgBouncer."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 10.0) -> None:
        config = self._write_config()
        command = [BINARY, str(config)]
        if os.geteuid() == 0:
            shutil.chown(self._dir, "postgres")
            for path in self._dir.iterdir():
                shutil.chown(path, "postgres")
            command[1:1] = ["-u", "postgres"]
        self._proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"pgbouncer did not listen: {self.log()}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def server_pids(self, database: str) -> list[int]:
        """Backend pids of the server connections PgBouncer holds to `database` now (admin console, SHOW SERVERS)."""
        admin = f"postgresql://{self.user}@127.0.0.1:{self.port}/pgbouncer"
        with psycopg.connect(admin, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            cur = conn.execute("SHOW SERVERS")
            names = [d.name for d in cur.description or ()]
            rows = cur.fetchall()
        database_at, pid_at = names.index("database"), names.index("remote_pid")
        return [int(row[pid_at]) for row in rows if row[database_at] == database]

    def log(self) -> str:
        path = self._dir / "pgbouncer.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _write_config(self) -> Path:
        (self._dir / "users.txt").write_text(f'"{self.user}" ""\n')
        prepared = "max_prepared_statements = 100\n" if handles_prepared_statements() else ""
        config = self._dir / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={self._upstream.hostname or '127.0.0.1'} port={self._upstream.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self._dir / 'users.txt'}\nadmin_users = {self.user}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self._pool_size}\nmax_db_connections = {self._pool_size}\n"
            "min_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = 500\n"
            "server_reset_query =\nserver_check_delay = 0\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self._dir / 'pgbouncer.log'}\npidfile = {self._dir / 'pgbouncer.pid'}\n" + prepared
        )
        return config


def require() -> None:
    """Skip (fail under STATEMGR_REQUIRE_SERVICES) when PgBouncer is not installed."""
    if shutil.which("pgbouncer") or os.path.exists(BINARY):
        return
    message = "pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def _login_name() -> str:
    import getpass

    return getpass.getuser()
