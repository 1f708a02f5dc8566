"""Start, wait for and stop the servers under test, leaving nothing behind.

Every launched process gets ``ISVC_BENCH_RUN=<token>`` in its environment and its own
session; Ray's raylet, GCS, workers and HAProxy inherit the marker, so :meth:`Server.stop`
can find and kill exactly what this run started (and nothing else on the machine), even
processes re-parented away from the tree.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from benchmarks.load import MARKER_ENV, request_body, server_processes
from pipelines.settings import serve_env

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / ".bench"
KSERVE_VENV = BENCH_DIR / "kserve-venv"
KSERVE_DIR = Path(__file__).resolve().parent / "kserve_baseline"
KSERVE_PINS = ("kserve==0.21.0", "scikit-learn==1.9.1", "joblib", "pandas")
MODEL_NAME = "churn-classifier"
KSERVE_PORTS = (8080, 8081)  # transformer (the endpoint), predictor
OURS_PORT = 8000

# fastapi >= 0.16x deprecates ORJSONResponse, which KServe 0.21 uses for every response: each
# request would print a warning. That is version skew in the pip resolve, not KServe's design.
_KSERVE_ENV = {"PYTHONWARNINGS": "ignore:ORJSONResponse is deprecated"}


def log(msg: str) -> None:
    """Progress line on stderr (the results table goes to stdout)."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def build_artifacts(out: Path) -> Path:
    """Run ``scripts/build_churn.py`` into ``out`` unless both artifacts are already there."""
    if not ((out / "transformer" / "scaler.pkl").exists() and (out / "predictor" / "model.joblib").exists()):
        log(f"building churn artifacts into {out}")
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_churn.py"), str(out)], check=True)
    return out


def ensure_kserve_venv(venv: Path = KSERVE_VENV) -> Path:
    """Create ``venv`` with KServe from PyPI unless it already imports; return its python."""
    python = venv / "bin" / "python"
    probe = "import importlib.metadata as m, kserve, sklearn; print(m.version('kserve'))"
    if python.exists():
        done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip() == KSERVE_PINS[0].split("==")[1]:
            return python
    log(f"installing {' '.join(KSERVE_PINS)} into {venv} (once, ~1-2 min)")
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip_log = BENCH_DIR / "logs" / "kserve-pip.log"
    pip_log.parent.mkdir(parents=True, exist_ok=True)
    with pip_log.open("wb") as out:
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", *KSERVE_PINS],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if pip.returncode != 0:
        raise RuntimeError(f"pip install into {venv} failed; see {pip_log}")
    subprocess.run([str(python), "-c", probe], check=True, capture_output=True)
    return python


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_ports_free(ports: Sequence[int], wait_s: float = 60.0) -> None:
    """Wait up to ``wait_s`` for ``ports`` to be free; raise naming the busy ones."""
    deadline = time.monotonic() + wait_s
    busy = [p for p in ports if port_in_use(p)]
    if busy:
        log(f"port(s) {busy} busy (another server running?); waiting up to {wait_s:.0f} s")
    while busy and time.monotonic() < deadline:
        time.sleep(2)
        busy = [p for p in ports if port_in_use(p)]
    if busy:
        raise RuntimeError(f"port(s) {busy} still in use: stop the server holding them and rerun")


def http_status(url: str, body: bytes | None = None, timeout_s: float = 5.0) -> int:
    """Status code of a GET (or a JSON POST when ``body`` is given); 0 when unreachable."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (urllib.error.URLError, OSError):
        return 0


@dataclass
class Server:
    """Processes launched for one server under test, and how to reach it."""

    name: str
    base_url: str
    ports: tuple[int, ...]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    logs: list[Path] = field(default_factory=list)

    @property
    def predict_url(self) -> str:
        """The V1 predict endpoint of the churn model."""
        return f"{self.base_url}/v1/models/{MODEL_NAME}:predict"

    @property
    def pids(self) -> list[int]:
        """Pids of the launched (root) processes."""
        return [p.pid for p in self.procs]

    def foreign_listeners(self) -> list[int]:
        """Pids not started by us that also listen on our ports.

        HAProxy binds with SO_REUSEPORT, so a second Ray cluster started on this machine (someone's
        ``make serve``) silently shares :8000 and takes part of the load.
        """
        ours = {p.pid for p in server_processes(self.pids, self.marker)}
        listening = {
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in self.ports and c.pid
        }
        return sorted(listening - ours)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Every process of the server stopped (SIGSTOP) for the duration, then resumed.

        For measuring the in-process floor between loads without the server's idle
        background work (Ray: ~0.2-0.3 cores here) slowing it; a second or two is far
        inside Ray's heartbeat and health-check timeouts.
        """
        procs = server_processes(self.pids, self.marker)
        stopped = []
        try:
            for p in procs:
                try:
                    p.suspend()
                    stopped.append(p)
                except psutil.Error:
                    pass
            yield
        finally:
            for p in stopped:
                try:
                    p.resume()
                except psutil.Error:
                    pass

    def launch(self, cmd: Sequence[str], log_name: str, env: Mapping[str, str] | None = None) -> None:
        """Start ``cmd`` in its own session with the marker set; output goes to ``.bench/logs``."""
        log_path = BENCH_DIR / "logs" / f"{log_name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {}), MARKER_ENV: self.marker}
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                list(cmd),
                cwd=ROOT,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        self.logs.append(log_path)

    def check_alive(self) -> None:
        """Raise with the log tail if a launched process has exited."""
        for proc, log_path in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").splitlines()[-25:]
                raise RuntimeError(
                    f"{self.name}: {proc.args!r} exited with {proc.returncode}; "
                    f"log {log_path}:\n" + "\n".join(tail)
                )

    def wait_ready(self, health_path: str, timeout_s: float = 180.0, base_url: str | None = None) -> float:
        """Poll ``GET health_path`` until 200, then (own URL only) a V1 predict; return seconds waited.

        ``base_url`` checks another port's health only (the KServe predictor behind the transformer).
        """
        start = time.monotonic()
        deadline = start + timeout_s
        checks: list[tuple[str, bytes | None]] = [((base_url or self.base_url) + health_path, None)]
        if base_url is None:
            checks.append((self.predict_url, request_body(1)))
        for url, payload in checks:
            while (code := http_status(url, payload)) != 200:
                self.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name}: {url} not 200 after {timeout_s:.0f} s (last {code})")
                time.sleep(0.5)
        return time.monotonic() - start

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGINT each launched session, then SIGTERM, then SIGKILL whatever still carries the marker.

        ``serve run`` answers SIGINT with a graceful Serve shutdown that can take 20-35 s (replica
        drain timeouts); the cluster is thrown away, so after ``grace_s`` SIGTERM ends it in ~1 s.
        """
        start = time.monotonic()
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 10.0)):
            for proc in self.procs:
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, sig)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and any(p.poll() is None for p in self.procs):
                time.sleep(0.2)
            if all(p.poll() is not None for p in self.procs):
                break
        self._kill_marked()
        log(f"{self.name} stopped in {time.monotonic() - start:.1f} s, no process left")

    def _kill_marked(self, wait_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL, every process carrying this server's marker (scoped ``ray stop``)."""
        deadline = time.monotonic() + wait_s
        left = server_processes(self.pids, self.marker)
        for proc in left:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        while left and time.monotonic() < deadline:
            time.sleep(0.3)
            left = server_processes([], self.marker)
        for proc in left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        left = server_processes([], self.marker)
        if left:
            raise RuntimeError(f"{self.name}: processes left running: {[p.pid for p in left]}")


def start_kserve(python: Path, artifacts: Path, ready_timeout_s: float = 120.0) -> Server:
    """KServe's two processes: predictor on :8081, transformer on :8080 forwarding to it over HTTP."""
    wait_ports_free(KSERVE_PORTS)
    transformer_port, predictor_port = KSERVE_PORTS
    server = Server("kserve", f"http://127.0.0.1:{transformer_port}", KSERVE_PORTS)
    common = ["--model_name", MODEL_NAME, "--enable_grpc", "false"]
    try:
        server.launch(
            [str(python), str(KSERVE_DIR / "predictor.py"), *common, "--http_port", str(predictor_port),
             "--model_dir", str(artifacts / "predictor")],
            "kserve-predictor",
            _KSERVE_ENV,
        )  # fmt: skip
        server.wait_ready(f"/v1/models/{MODEL_NAME}", ready_timeout_s, f"http://127.0.0.1:{predictor_port}")
        server.launch(
            [str(python), str(KSERVE_DIR / "transformer.py"), *common, "--http_port", str(transformer_port),
             "--predictor_host", f"127.0.0.1:{predictor_port}", "--predictor_protocol", "v1",
             "--model_dir", str(artifacts / "transformer")],
            "kserve-transformer",
            _KSERVE_ENV,
        )  # fmt: skip
        server.wait_ready(f"/v1/models/{MODEL_NAME}", ready_timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def start_serve(target: str, artifacts: Path, name: str, ray_tmpdir: str = "/tmp/rb") -> Server:
    """``serve run <target>`` on a new local Ray (HAProxy ingress); ready once health and predict are 200."""
    wait_ports_free([OURS_PORT])
    Path(ray_tmpdir).mkdir(parents=True, exist_ok=True)
    env = {
        # isvc's Serve settings (pipelines/serve.env); a value set in the environment wins.
        **serve_env(),
        "RAY_ADDRESS": "local",
        "RAY_TMPDIR": ray_tmpdir,
        "ISVC_ARTIFACTS": str(artifacts.resolve()),
    }
    serve_bin = Path(sys.executable).with_name("serve")
    server = Server(name, f"http://127.0.0.1:{OURS_PORT}", (OURS_PORT,))
    try:
        server.launch([str(serve_bin), "run", target], name.replace(":", "-"), env)
        server.wait_ready("/v2/health/ready", 180.0)
    except BaseException:
        server.stop()
        raise
    return server
