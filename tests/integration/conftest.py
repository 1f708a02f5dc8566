"""One real local Ray cluster per test session, started as the README's cluster recipe does.

``ray start --head --block`` with isvc's Serve settings (pipelines/serve.env), its own ports and
temp folder, and a marker in its environment; applications go on it with ``serve deploy`` (and
``isvc serve``), with ``RAY_AUTH_MODE=token`` as Ray 2.60's token auth needs. At the end, only
the processes this session started are stopped: the ``ray start`` process group and anything
carrying the marker (Ray workers, HAProxy) — never ``ray stop``, which would end every Ray
cluster on the machine, a developer's ``make serve`` included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from pipelines.settings import serve_env
from tests.helpers import ROOT

BIN = Path(sys.executable).parent
MARKER = "ISVC_TEST_RUN"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def marked(marker: str) -> list[psutil.Process]:
    """Every process whose environment carries ``ISVC_TEST_RUN=<marker>``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == marker:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def stop(marker: str, *groups: int) -> None:
    """SIGTERM the groups and the marked processes, then SIGKILL what is left."""
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    procs = marked(marker)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=15)
    for p in alive + marked(marker):
        with contextlib.suppress(psutil.Error):
            p.kill()


def _dashboard_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/version", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


@dataclass
class Cluster:
    """A running session cluster: where it listens, the env its clients use, its working folder."""

    cwd: Path
    env: dict[str, str]
    http_port: int
    marker: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Ray's (or isvc's) CLI against this cluster, as a user in another shell types it."""
        return subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def config(self, name: str) -> Path:
        """``configs/<name>`` with this session's HTTP port, in the working folder."""
        cfg = yaml.safe_load((ROOT / "configs" / name).read_text())
        cfg["http_options"]["port"] = self.http_port
        path = self.cwd / f"session-{name}"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    def deploy(self, name: str, deployments: set[str], timeout_s: float = 240) -> None:
        """``serve deploy`` a config and wait until its application runs exactly ``deployments``."""
        done = self.cli("serve", "deploy", str(self.config(name)))
        assert done.returncode == 0, done.stderr[-3000:]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.cli("serve", "status")
            assert status.returncode == 0, status.stderr[-3000:]
            apps = (yaml.safe_load(status.stdout) or {}).get("applications") or {}
            app = apps.get("ml-serving-churn-classifier") or {}
            found = app.get("deployments") or {}
            if (
                app.get("status") == "RUNNING"
                and set(found) == deployments
                and all(d.get("status") == "HEALTHY" for d in found.values())
                and self.ready()
            ):
                return
            time.sleep(2)
        raise TimeoutError(f"{name} not running after {timeout_s}s:\n{status.stdout}")

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base}/v2/models/churn-classifier/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


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
    env = serve_env({**base_env, **s3_server, MARKER: marker, "RAY_TMPDIR": str(tmp)})
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
            f"--ray-client-server-port={free_port()}",
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
        while not _dashboard_up(dashboard_url) or c.cli("ray", "status", timeout=60).returncode != 0:
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed:\n{(served_dir / 'ray-start.log').read_text()[-3000:]}")
            time.sleep(2)
        yield c
    finally:
        stop(marker, head.pid)
        log.close()
