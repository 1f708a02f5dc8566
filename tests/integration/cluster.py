"""Integration-tier helpers (fixtures live in conftest.py): one real local Ray cluster per session,
started as the README's cluster recipe does.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from tests.helpers import ROOT

BIN = Path(sys.executable).parent
MARKER = "ISVC_TEST_RUN"


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


def dashboard_up(url: str) -> bool:
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

    def config(self, name: str | dict[str, Any]) -> Path:
        """``configs/<name>`` (or a config dict) with this session's HTTP port, in the working folder."""
        cfg = yaml.safe_load((ROOT / "configs" / name).read_text()) if isinstance(name, str) else name
        cfg["http_options"]["port"] = self.http_port
        path = self.cwd / f"session-{name if isinstance(name, str) else 'config.yaml'}"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    def deploy(
        self,
        name: str | dict[str, Any],
        deployments: set[str],
        timeout_s: float = 240,
        apps: dict[str, str] | None = None,
    ) -> None:
        """``serve deploy`` a config; wait until each application runs exactly ``deployments``.

        ``apps``: application name → the URL path of a model whose V2 ``ready`` must be 200
        (default: the churn service).
        """
        apps = apps or {"ml-serving-churn-classifier": "/v2/models/churn-classifier/ready"}
        done = self.cli("serve", "deploy", str(self.config(name)))
        assert done.returncode == 0, done.stderr[-3000:]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.cli("serve", "status")
            assert status.returncode == 0, status.stderr[-3000:]
            running = (yaml.safe_load(status.stdout) or {}).get("applications") or {}
            if all(self._running(running.get(a) or {}, deployments, path) for a, path in apps.items()):
                return
            time.sleep(2)
        raise TimeoutError(f"{name} not running after {timeout_s}s:\n{status.stdout}")

    def _running(self, app: dict[str, Any], deployments: set[str], ready_path: str) -> bool:
        found = app.get("deployments") or {}
        return (
            app.get("status") == "RUNNING"
            and set(found) == deployments
            and all(d.get("status") == "HEALTHY" for d in found.values())
            and self.ready(ready_path)
        )

    def ready(self, path: str = "/v2/models/churn-classifier/ready") -> bool:
        try:
            return httpx.get(f"{self.base}{path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
