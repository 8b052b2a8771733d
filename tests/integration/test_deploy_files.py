"""The deploy files as CI checks them (`make check-deploy`): valid ones pass, a broken copy of each kind fails, and the
alert rules and the dashboard only name metrics a real `statemgr serve` exports."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import shutil
import subprocess
import urllib.request
from collections.abc import AsyncIterator

import grpc
import pytest
import yaml

from statemgr.v1 import tenant_pb2, tenant_service_pb2, tenant_service_pb2_grpc
from tests.conftest import REQUIRE_SERVICES
from tests.integration import services
from tests.integration.conftest import ADMIN_KEY
from tests.integration.processes import ServeProcess, free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"


def _check_deploy(**paths: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        message = "promtool (Debian's prometheus package) is needed; .ci/run installs it"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    overrides = [f"{name}={value}" for name, value in paths.items()]
    return subprocess.run(
        ["make", "--no-print-directory", "check-deploy", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_deploy_files_pass_every_check() -> None:
    run = _check_deploy()
    assert run.returncode == 0, run.stdout + run.stderr


BROKEN = {
    # name: (make variable, file name, content, what the tool says)
    "dockerfile": ("DOCKERFILE", "Dockerfile", "FROM python:latest\nRUN cd /src && pip install .\n", "DL3007"),
    "manifest": (
        "K8S",
        "deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: three}\n",
        "replicas",
    ),
    "compose": ("COMPOSE", "compose.yaml", "services:\n  x:\n    image: python\n    depends_on: 7\n", "depends_on"),
    "rules": (
        "RULES",
        "alerts.yaml",
        "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m])\n",
        "parse error",
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_file_fails_the_check(kind: str, tmp_path: pathlib.Path) -> None:
    variable, name, content, says = BROKEN[kind]
    broken = tmp_path / name
    broken.write_text(content)
    run = _check_deploy(**{variable: str(broken)})
    assert run.returncode != 0, f"{kind}: a broken file passed\n{run.stdout}{run.stderr}"
    assert says in run.stdout + run.stderr


def test_a_rule_test_that_no_longer_matches_fails(tmp_path: pathlib.Path) -> None:
    (tmp_path / "alerts.yaml").write_text((MONITORING / "alerts.yaml").read_text().replace("> 60", "> 6000"))
    (tmp_path / "alerts.test.yaml").write_text((MONITORING / "alerts.test.yaml").read_text())
    run = _check_deploy(RULES=str(tmp_path / "alerts.yaml"), RULE_TESTS=str(tmp_path / "alerts.test.yaml"))
    assert run.returncode != 0 and "StatemgrPublishLagHigh" in run.stdout + run.stderr


@pytest.fixture
async def serve_with_metrics(database_url: str) -> AsyncIterator[tuple[ServeProcess, int]]:
    redis_url = services.require(services.REDIS_URL, 6379, "Redis")
    metrics_port = free_port()
    process = ServeProcess(
        {
            "STATEMGR_DATABASE_URL": database_url,
            "STATEMGR_ADMIN_KEY": ADMIN_KEY,
            "STATEMGR_REDIS_URL": redis_url,
            "STATEMGR_AMQP_URL": "",
        },
        args=("--workers", "0"),  # one process: every metric on one port
    )
    process.env["STATEMGR_METRICS_LISTEN"] = f"127.0.0.1:{metrics_port}"
    try:
        await process.start()
        yield process, metrics_port
    finally:
        process.kill()


async def test_alerts_and_dashboard_name_only_metrics_the_server_exports(
    serve_with_metrics: tuple[ServeProcess, int],
) -> None:
    serve, port = serve_with_metrics
    async with grpc.aio.insecure_channel(serve.target) as channel:  # an RPC, so its histogram has series
        await tenant_service_pb2_grpc.TenantServiceStub(channel).CreateTenant(
            tenant_service_pb2.CreateTenantRequest(tenant=tenant_pb2.Tenant(display_name="metrics")),
            metadata=(("authorization", f"Bearer {ADMIN_KEY}"),),
        )
    exposition = await asyncio.to_thread(_scrape, port)
    exported = set(re.findall(r"^(statemgr_\w+?)(?:\{| )", exposition, flags=re.MULTILINE))
    exported |= set(re.findall(r"^# TYPE (statemgr_\w+) ", exposition, flags=re.MULTILINE))

    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    queries = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    queries += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = set(re.findall(r"\bstatemgr_\w+", "\n".join(queries)))
    assert len(named) >= 15, named
    missing = sorted(name for name in named if name not in exported)
    assert not missing, f"named in deploy/monitoring but not exported: {missing}"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())
