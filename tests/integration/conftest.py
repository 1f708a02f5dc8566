"""Fixtures of the integration tier: an S3 server and one Ray cluster per session (see cluster.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.settings import serve_env
from tests.helpers import ROOT
from tests.integration.cluster import BIN, MARKER, Cluster, dashboard_up, free_port, stop


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def served_dir(churn_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working folder: ``artifacts/churn`` and ``configs/`` where the configs expect them."""
    d = tmp_path_factory.mktemp("served")
    (d / "artifacts").mkdir()
    (d / "artifacts" / "churn").symlink_to(churn_artifacts)
    (d / "configs").symlink_to(ROOT / "configs")
    return d


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real S3 server (moto's server mode); yields the env that points boto3 at it."""
    marker = uuid.uuid4().hex
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, MARKER: marker}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    s3 = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(s3["AWS_ENDPOINT_URL"], timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"moto_server did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield s3
    finally:
        stop(marker, proc.pid)


@pytest.fixture(scope="session")
def cluster(served_dir: Path, s3_server: dict[str, str]) -> Iterator[Cluster]:
    """``ray start --head`` with isvc's settings (and the S3 server's env, as a KServe pod has it)."""
    marker = uuid.uuid4().hex
    tmp = Path(os.environ.get("RAY_TMPDIR", "/tmp/isvc-it")) / marker[:8]
    tmp.mkdir(parents=True, exist_ok=True)
    gcs, dashboard = free_port(), free_port()
    base_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    haproxy = Path("/tmp") / f"hx-{marker[:6]}"  # short: HAProxy's unix sockets live here (108-byte limit)
    env = serve_env({**base_env, **s3_server, MARKER: marker, "RAY_TMPDIR": str(tmp)})
    env.update(  # HAProxy's own ports and files, apart from any other Serve on this machine
        RAY_SERVE_HAPROXY_METRICS_PORT=str(free_port()),
        RAY_SERVE_HAPROXY_STATS_PORT=str(free_port()),
        RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=str(haproxy / "haproxy.cfg"),
        RAY_SERVE_HAPROXY_SOCKET_PATH=str(haproxy / "admin.sock"),
        RAY_SERVE_HAPROXY_SERVER_STATE_BASE=str(haproxy),
        RAY_SERVE_HAPROXY_SERVER_STATE_FILE=str(haproxy / "server-state"),
        RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH=str(haproxy / "metrics.sock"),
    )
    log = open(served_dir / "ray-start.log", "w")  # noqa: SIM115 - closed below
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={gcs}",
            f"--dashboard-port={dashboard}",
            "--dashboard-host=127.0.0.1",
            # Every port of its own, so that a developer's `make serve` beside it is left alone.
            *(
                f"--{flag}={free_port()}"
                for flag in (
                    "ray-client-server-port",
                    "dashboard-agent-listen-port",
                    "dashboard-agent-grpc-port",
                    "metrics-export-port",
                    "runtime-env-agent-port",
                    "node-manager-port",
                    "object-manager-port",
                )
            ),
            "--num-cpus=4",
            "--disable-usage-stats",
            f"--temp-dir={tmp}",
        ],
        cwd=served_dir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    dashboard_url = f"http://127.0.0.1:{dashboard}"
    client_env = {
        **env,
        "RAY_ADDRESS": f"127.0.0.1:{gcs}",
        "RAY_DASHBOARD_ADDRESS": dashboard_url,
        "RAY_AUTH_MODE": "token",
    }
    c = Cluster(cwd=served_dir, env=client_env, http_port=free_port(), marker=marker)
    try:
        deadline = time.monotonic() + 120
        while not dashboard_up(dashboard_url) or c.cli("ray", "status", timeout=60).returncode != 0:
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed:\n{(served_dir / 'ray-start.log').read_text()[-3000:]}")
            time.sleep(2)
        yield c
    finally:
        stop(marker, head.pid)
        log.close()
        shutil.rmtree(haproxy, ignore_errors=True)
