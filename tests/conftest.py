"""Suite-wide rules: in CI (STATEMGR_REQUIRE_SERVICES=1) a skipped integration test fails the run."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("STATEMGR_REQUIRE_SERVICES", "") == "1" or os.environ.get("CI") == "true"
_skipped_integration: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "/integration/" in report.nodeid.replace("tests/integration", "/integration/"):
        _skipped_integration.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE_SERVICES and _skipped_integration:
        print(f"\n{len(_skipped_integration)} integration test(s) skipped while services are required:")
        for nodeid in _skipped_integration:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
