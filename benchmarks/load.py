"""Drive HTTP load with ``wrk`` and charge the server's CPU to the requests it completed.

One call of :func:`measure` runs ``wrk`` for a fixed duration at one concurrency against one
URL, POSTing one JSON body (``benchmarks/wrk_post.lua``), and snapshots the CPU time
(user + system, own and reaped children) of the server's whole process tree before and after.

Example::

    python benchmarks/load.py http://127.0.0.1:8080/v1/models/churn-classifier:predict \
        --pid 1234 --concurrency 1,8,32,64 --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

LUA_SCRIPT = Path(__file__).with_name("wrk_post.lua")
MARKER_ENV = "ISVC_BENCH_RUN"
"""Environment variable set on every server the harness launches; descendants inherit it."""

ROW: dict[str, float] = {
    "age": 41,
    "tenure_days": 30,
    "monthly_spend": 120.5,
    "support_tickets": 6,
    "last_login_days": 21,
}


def request_body(rows: int = 1) -> bytes:
    """The V1 churn request with ``rows`` copies of the example row.

    >>> json.loads(request_body(2))["instances"][1]["age"]
    41
    """
    return json.dumps({"instances": [ROW] * rows}).encode()


def request_body_v2(rows: int = 1) -> bytes:
    """The V2 churn request: one ``[rows, 5]`` FP32 tensor of the example row.

    >>> json.loads(request_body_v2(2))["inputs"][0]["shape"]
    [2, 5]
    """
    data = list(ROW.values()) * rows
    tensor = {"name": "features", "shape": [rows, len(ROW)], "datatype": "FP32", "data": data}
    return json.dumps({"inputs": [tensor]}).encode()


def request_body_v2_binary(rows: int = 1) -> tuple[bytes, dict[str, str]]:
    """The V2 churn request with the binary tensor data extension, and its HTTP headers.

    One ``[rows, 5]`` FP64 tensor as raw little-endian bytes after the JSON header; the
    outputs come back as raw bytes too (``binary_data_output``).

    >>> body, headers = request_body_v2_binary(2)
    >>> len(body) - int(headers["Inference-Header-Content-Length"])
    80
    """
    raw = struct.pack(f"<{rows * len(ROW)}d", *(list(ROW.values()) * rows))
    tensor = {
        "name": "features",
        "shape": [rows, len(ROW)],
        "datatype": "FP64",
        "parameters": {"binary_data_size": len(raw)},
    }
    head = json.dumps({"inputs": [tensor], "parameters": {"binary_data_output": True}}).encode()
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))}
    return head + raw, headers


def v2_url(v1_predict_url: str) -> str:
    """``…/v1/models/NAME:predict`` → ``…/v2/models/NAME/infer``."""
    return v1_predict_url.replace("/v1/models/", "/v2/models/").replace(":predict", "/infer")


@dataclass(frozen=True)
class LoadResult:
    """What one ``wrk`` run at one concurrency measured."""

    concurrency: int
    rows_per_request: int
    duration_s: float
    requests: int
    req_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_breakdown: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    cpu_ms_per_req: float | None = None
    wrk_cpu_s: float = 0.0
    other_cores: float = 0.0
    """Average cores busy with neither the server nor wrk: load from outside the benchmark."""

    @property
    def rows_s(self) -> float:
        """Rows scored per second (``req_s`` × rows per request)."""
        return self.req_s * self.rows_per_request

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields, ``rows_s`` included."""
        return {**asdict(self), "rows_s": self.rows_s}


def _marked(proc: psutil.Process, marker: str) -> bool:
    """True when ``proc`` carries ``ISVC_BENCH_RUN=<marker>`` in its environment."""
    try:
        return bool(proc.environ().get(MARKER_ENV) == marker)
    except (psutil.Error, OSError):
        return False


def server_processes(roots: Iterable[int], marker: str | None = None) -> list[psutil.Process]:
    """The launched processes, all their descendants, and any process carrying ``marker``.

    The marker catches processes re-parented away from the tree (a daemonised helper).
    """
    found: dict[int, psutil.Process] = {}
    for pid in roots:
        try:
            root = psutil.Process(pid)
            found[pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        except psutil.Error:
            continue
    if marker:
        for proc in psutil.process_iter():
            if proc.pid not in found and _marked(proc, marker):
                found[proc.pid] = proc
    return list(found.values())


def cpu_snapshot(roots: Iterable[int], marker: str | None = None) -> dict[tuple[int, float], float]:
    """CPU seconds per live process of the server, keyed by ``(pid, create_time)``.

    Each value is user + system of the process plus that of its reaped children, so a
    helper that exits between two snapshots is still charged (to its parent).
    """
    snap: dict[tuple[int, float], float] = {}
    for proc in server_processes(roots, marker):
        try:
            with proc.oneshot():
                t = proc.cpu_times()
                snap[(proc.pid, proc.create_time())] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return snap


def cpu_delta(before: dict[tuple[int, float], float], after: dict[tuple[int, float], float]) -> float:
    """CPU seconds spent between two snapshots; processes born in between count from zero."""
    return sum(max(0.0, t - before.get(key, 0.0)) for key, t in after.items())


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores, idle and iowait excluded)."""
    t = psutil.cpu_times()
    return float(sum(t)) - float(t.idle) - float(getattr(t, "iowait", 0.0))


def _children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (``wrk`` once it has exited)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_wrk(
    url: str,
    body: bytes,
    connections: int,
    duration_s: float,
    timeout_s: float = 5.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``wrk`` once and return the JSON its ``done()`` hook printed.

    Threads are ``min(connections, 2)``; requests slower than ``timeout_s`` count as timeouts.
    ``headers`` are sent with every request (after the default JSON content type).
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk not found on PATH (Debian/Ubuntu: apt-get install wrk)")
    with tempfile.NamedTemporaryFile(prefix="wrk-body-", suffix=".json") as tmp:
        tmp.write(body)
        tmp.flush()
        cmd = [
            wrk,
            f"-t{min(connections, 2)}",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            "-s",
            str(LUA_SCRIPT),
            url,
        ]
        env = {**os.environ, "WRK_BODY_FILE": tmp.name}
        if headers:
            env["WRK_HEADERS"] = "\n".join(f"{k}: {v}" for k, v in headers.items())
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration_s + 60)
    for line in proc.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return dict(json.loads(line[len("WRK_JSON ") :]))
    raise RuntimeError(f"wrk printed no summary (rc={proc.returncode}): {proc.stdout}{proc.stderr}")


def measure(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    pids: Sequence[int],
    marker: str | None = None,
    rows_per_request: int = 1,
    timeout_s: float = 5.0,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Load ``url`` at one concurrency and charge the server tree's CPU to completed requests.

    Also reports ``other_cores``: machine CPU used by neither the server nor wrk during the run,
    a warning sign that the figures were taken on a busy machine.
    """
    before = cpu_snapshot(pids, marker)
    busy0, wrk0, t0 = _machine_busy_s(), _children_cpu_s(), time.monotonic()
    out = run_wrk(url, body, concurrency, duration_s, timeout_s, headers)
    cpu_s = cpu_delta(before, cpu_snapshot(pids, marker))
    busy, wrk_cpu, wall = _machine_busy_s() - busy0, _children_cpu_s() - wrk0, time.monotonic() - t0
    requests = int(out["requests"])
    elapsed = max(float(out["duration_us"]) / 1e6, 1e-9)
    lat = out["latency_us"]
    breakdown = {k: int(v) for k, v in out["errors"].items()}
    return LoadResult(
        concurrency=concurrency,
        rows_per_request=rows_per_request,
        duration_s=round(elapsed, 3),
        requests=requests,
        req_s=requests / elapsed,
        p50_ms=lat["p50"] / 1e3,
        p90_ms=lat["p90"] / 1e3,
        p99_ms=lat["p99"] / 1e3,
        max_ms=lat["max"] / 1e3,
        errors=sum(breakdown.values()),
        error_breakdown=breakdown,
        cpu_s=round(cpu_s, 3),
        cpu_ms_per_req=(cpu_s * 1e3 / requests) if requests else None,
        wrk_cpu_s=round(wrk_cpu, 3),
        other_cores=round(max(0.0, busy - cpu_s - wrk_cpu) / wall, 2),
    )


def sweep(
    url: str,
    concurrencies: Sequence[int],
    duration_s: float,
    pids: Sequence[int],
    marker: str | None = None,
    rows: int = 1,
    timeout_s: float = 5.0,
    pause_s: float = 1.0,
) -> list[LoadResult]:
    """:func:`measure` at each concurrency in turn, with a short pause between runs."""
    body = request_body(rows)
    results = []
    for i, c in enumerate(concurrencies):
        if i:
            time.sleep(pause_s)
        results.append(measure(url, body, c, duration_s, pids, marker, rows, timeout_s))
    return results


def main(argv: list[str] | None = None) -> None:
    """Ad-hoc load against a server already running: print one JSON line per concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--pid", type=int, action="append", default=[], help="server process (repeatable)")
    parser.add_argument("--concurrency", default="1,8,32,64", help="comma-separated connection counts")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per concurrency")
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--timeout", type=float, default=5.0, help="wrk request timeout, seconds")
    args = parser.parse_args(argv)
    cs = [int(c) for c in args.concurrency.split(",")]
    for result in sweep(args.url, cs, args.duration, args.pid, None, args.rows, args.timeout):
        print(json.dumps(result.as_dict()), file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
