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
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from pipelines.settings import serve_env
from tests.helpers import ROOT

BIN = Path(sys.executable).parent
MARKER = "ISVC_TEST_RUN"
CHURN_DEPLOYMENTS = {
    "ml-serving-churn-classifier": {"ingress", "predictor"},
    "ml-serving-churn-classifier-explainer": {"explainer"},
}
"""configs/churn.yaml: the service, and its explainer as its own application on its route."""
CHURN_READY = dict.fromkeys(CHURN_DEPLOYMENTS, "/v2/models/churn-classifier-explainer/ready")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_block(kind: str, size: int = 50) -> dict[str, str]:
    """``RAY_SERVE_DIRECT_INGRESS_{MIN,MAX}_{kind}_PORT``: a free block of ``size`` ports."""
    import random

    for _ in range(100):
        base = random.randrange(20000, 29000, size)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + size):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return {
            f"RAY_SERVE_DIRECT_INGRESS_MIN_{kind}_PORT": str(base),
            f"RAY_SERVE_DIRECT_INGRESS_MAX_{kind}_PORT": str(base + size - 1),
        }
    raise RuntimeError(f"no free block of {size} ports for {kind}")


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
    metrics_port: int = 0
    """Ray's Prometheus endpoint (``ray start --metrics-export-port``): ``GET /metrics``."""

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
        deployments: set[str] | dict[str, set[str]],
        timeout_s: float = 240,
        apps: dict[str, str] | None = None,
    ) -> None:
        """``serve deploy`` a config; wait until each application runs exactly ``deployments``
        (one set for every application, or a set per application name).

        ``apps``: application name → the URL path of a model whose V2 ``ready`` must be 200
        (default: the churn service).
        """
        apps = apps or {"ml-serving-churn-classifier": "/v2/models/churn-classifier/ready"}
        wanted = deployments
        done = self.cli("serve", "deploy", str(self.config(name)))
        assert done.returncode == 0, done.stderr[-3000:]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.cli("serve", "status")
            assert status.returncode == 0, status.stderr[-3000:]
            running = (yaml.safe_load(status.stdout) or {}).get("applications") or {}
            if all(
                self._running(running.get(a) or {}, wanted[a] if isinstance(wanted, dict) else wanted, path)
                for a, path in apps.items()
            ):
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


@contextlib.contextmanager
def start_cluster(cwd: Path, extra_env: dict[str, str] | None = None, num_cpus: int = 4) -> Iterator[Cluster]:
    """``ray start --head --block`` in ``cwd`` with isvc's Serve settings, its own ports, temp
    folder and HAProxy files, and a marker; yields the :class:`Cluster`; stops exactly what it
    started (the integration tier's session fixture and ``benchmarks/rollout.py`` use it)."""
    marker = uuid.uuid4().hex
    tmp = Path(os.environ.get("RAY_TMPDIR", "/tmp/isvc-it")) / marker[:8]
    tmp.mkdir(parents=True, exist_ok=True)
    gcs, dashboard, metrics = free_port(), free_port(), free_port()
    base_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    haproxy = Path("/tmp") / f"hx-{marker[:6]}"  # short: HAProxy's unix sockets live here (108-byte limit)
    env = serve_env({**base_env, **(extra_env or {}), MARKER: marker, "RAY_TMPDIR": str(tmp)})
    env.update(  # HAProxy's own ports and files, apart from any other Serve on this machine
        RAY_SERVE_HAPROXY_METRICS_PORT=str(free_port()),
        RAY_SERVE_HAPROXY_STATS_PORT=str(free_port()),
        RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=str(haproxy / "haproxy.cfg"),
        RAY_SERVE_HAPROXY_SOCKET_PATH=str(haproxy / "admin.sock"),
        RAY_SERVE_HAPROXY_SERVER_STATE_BASE=str(haproxy),
        RAY_SERVE_HAPROXY_SERVER_STATE_FILE=str(haproxy / "server-state"),
        RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH=str(haproxy / "metrics.sock"),
        # Serve's fallback proxy and replica port ranges are machine-wide defaults (8500, 30000+,
        # 40000+): another cluster's HAProxy would send requests to this one's, so move them.
        RAY_SERVE_FALLBACK_PROXY_HTTP_PORT=str(free_port()),
        RAY_SERVE_FALLBACK_PROXY_GRPC_PORT=str(free_port()),
        **port_block("HTTP"),
        **port_block("GRPC"),
    )
    log = open(cwd / "ray-start.log", "w")  # noqa: SIM115 - closed below
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={gcs}",
            f"--dashboard-port={dashboard}",
            "--dashboard-host=127.0.0.1",
            f"--metrics-export-port={metrics}",
            # Every port of its own, so that a developer's `make serve` beside it is left alone.
            *(
                f"--{flag}={free_port()}"
                for flag in (
                    "ray-client-server-port",
                    "dashboard-agent-listen-port",
                    "dashboard-agent-grpc-port",
                    "runtime-env-agent-port",
                    "node-manager-port",
                    "object-manager-port",
                )
            ),
            f"--num-cpus={num_cpus}",
            "--disable-usage-stats",
            f"--temp-dir={tmp}",
        ],
        cwd=cwd,
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
    c = Cluster(cwd=cwd, env=client_env, http_port=free_port(), marker=marker, metrics_port=metrics)
    try:
        deadline = time.monotonic() + 120
        while not dashboard_up(dashboard_url) or c.cli("ray", "status", timeout=60).returncode != 0:
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed:\n{(cwd / 'ray-start.log').read_text()[-3000:]}")
            time.sleep(2)
        yield c
    finally:
        stop(marker, head.pid)
        log.close()
        shutil.rmtree(haproxy, ignore_errors=True)
