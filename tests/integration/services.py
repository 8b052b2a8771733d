"""Where the real services are: environment variables with local defaults, testcontainers as the fallback.

With STATEMGR_REQUIRE_SERVICES=1 (set by .ci/run) an unreachable service fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import socket
import urllib.parse
from collections.abc import Callable

import pytest

from tests.conftest import REQUIRE_SERVICES

PG_ADMIN_URL = os.environ.get("STATEMGR_TEST_PG_URL", "postgresql://localhost/postgres")
REDIS_URL = os.environ.get("STATEMGR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("STATEMGR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def reachable(url: str, default_port: int) -> bool:
    parsed = urllib.parse.urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def require(url: str, default_port: int, name: str, container: Callable[[], str] | None = None) -> str:
    """The service's URL; starts a container when it is unreachable and Docker runs; else skip (or fail in CI)."""
    if reachable(url, default_port):
        return url
    if container is not None and shutil.which("docker") and _docker_running():
        return container()
    message = f"{name} is not reachable at {url}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and services are required (STATEMGR_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def postgres_container() -> str:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", driver=None)
    container.start()
    return str(container.get_connection_url())


def _docker_running() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False
