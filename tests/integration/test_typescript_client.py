"""The TypeScript client's examples (clients/typescript/test) against a real `statemgr serve`.

Each example is a caller's flow (inbound transformer, outbound transformer, agent portal) written with nothing but
the generated package; Node's own test runner runs them, and this test fails when any of them fails.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.integration.conftest import ADMIN_KEY
from tests.integration.processes import ServeProcess

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "clients" / "typescript"
TSX = PACKAGE.parents[1] / "node_modules" / "tsx"


def _node() -> str:
    node = shutil.which("node")
    if node is None or not TSX.is_dir():
        message = "node and the npm workspace (make setup) are needed for the TypeScript examples"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return node


@pytest.fixture
async def serve(database_url: str) -> AsyncIterator[ServeProcess]:
    process = ServeProcess(
        {
            "STATEMGR_DATABASE_URL": database_url,
            "STATEMGR_ADMIN_KEY": ADMIN_KEY,
            "STATEMGR_REDIS_URL": "",
            "STATEMGR_AMQP_URL": "",
        }
    )
    try:
        await process.start()
        yield process
    finally:
        process.kill()


@pytest.mark.timeout(360)  # seven flows in Node; each is a second or two here, but much slower on a loaded machine
def test_typescript_examples_pass_against_a_real_server(serve: ServeProcess) -> None:
    files = sorted(str(path.relative_to(PACKAGE)) for path in (PACKAGE / "test").glob("*.test.ts"))
    assert len(files) >= 3, files
    env = {
        **serve.env,
        "STATEMGR_TEST_BASE_URL": f"http://{serve.target}",
        "STATEMGR_TEST_ADMIN_KEY": ADMIN_KEY,
        "NODE_NO_WARNINGS": "1",
    }
    command = [_node(), "--import", "tsx", "--test", "--test-reporter=spec", *files]
    run = subprocess.run(command, cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=330, check=False)
    print(run.stdout[-6000:], run.stderr[-3000:])
    assert run.returncode == 0, f"node --test failed:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}\n{serve.stderr()}"
    assert "ℹ fail 0" in run.stdout
    assert f"ℹ pass {_count_tests(PACKAGE / 'test')}" in run.stdout


def _count_tests(folder: pathlib.Path) -> int:
    """How many `test(` cases the example files declare, so a file that silently ran nothing is caught."""
    return sum(path.read_text().count('\ntest("') for path in folder.glob("*.test.ts"))
