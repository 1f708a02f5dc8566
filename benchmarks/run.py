"""``make bench``: our churn pipeline on Ray Serve against KServe's own two-process pipeline.

One run measures, on this machine and in this order:

1. the in-process floor: ``scaler.transform`` + ``model.predict_proba`` on 256 rows in a loop;
2. KServe (``kserve`` from PyPI in ``.bench/kserve-venv``): transformer on :8080 → HTTP →
   predictor on :8081, one-row V1 requests at each concurrency;
3. each of our configs under ``serve run`` (HAProxy ingress, :8000): the same loads, then
   256-row requests at c=1, 4 and 16 as V1 rows, as one V2 JSON tensor and as one V2 tensor
   in raw bytes (binary tensor data extension);

then prints one table and the ratios against the DESIGN §4 goals, and writes
``.bench/results.json``. Examples::

    python benchmarks/run.py                          # everything, 10 s per load (~8 min)
    python benchmarks/run.py --only kserve --duration 5
    python benchmarks/run.py --only ours --configs configs/churn.yaml
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/run.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _servers  # noqa: E402
from benchmarks._servers import BENCH_DIR, ROOT, Server, log  # noqa: E402
from benchmarks.load import (  # noqa: E402
    ROW,
    LoadResult,
    cpu_delta,
    cpu_snapshot,
    measure,
    request_body,
    request_body_v2,
    request_body_v2_binary,
    run_wrk,
    v2_url,
)

DEFAULT_CONFIGS = ("configs/churn.yaml", "configs/churn-collocated.yaml")
BATCH_PROTOCOLS = {"v1": "", "v2": "(V2)", "v2-binary": "(V2 binary)"}
"""Batched loads run in each protocol; its rows carry the suffix after the server name."""


def base_server(name: str) -> str:
    """``ours:churn (V2 binary)`` → ``ours:churn``."""
    for suffix in BATCH_PROTOCOLS.values():
        if suffix and name.endswith(f" {suffix}"):
            return name[: -len(suffix) - 1]
    return name


def batch_load(proto: str, rows: int, v1_url: str) -> tuple[bytes, str, dict[str, str] | None]:
    """Body, URL and extra headers of a batched request in ``proto``."""
    if proto == "v1":
        return request_body(rows), v1_url, None
    if proto == "v2":
        return request_body_v2(rows), v2_url(v1_url), None
    body, headers = request_body_v2_binary(rows)
    return body, v2_url(v1_url), headers


GOALS = {"req_s_ratio": 3.0, "p99_ratio": 0.5, "errors_c64": 0, "floor_pct": 60.0}


@dataclass(frozen=True)
class Row:
    """One table line: which server, which load, what it measured."""

    server: str
    kind: str  # "kserve" | "ours"
    result: LoadResult
    shared_with: tuple[int, ...] = ()
    """Foreign pids found listening on the server's port around this load: the figures are invalid."""
    floor_rows_s: float | None = None
    """In-process floor measured right before and after this (batched) load."""

    @property
    def floor_pct(self) -> float | None:
        if not self.floor_rows_s:
            return None
        return 100.0 * self.result.rows_s / self.floor_rows_s

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {
            "server": self.server,
            "kind": self.kind,
            **self.result.as_dict(),
            "valid": not self.shared_with,
            "shared_with": list(self.shared_with),
            "floor_rows_s": self.floor_rows_s,
            "floor_pct": self.floor_pct,
        }


@functools.cache
def _floor_models(artifacts: Path) -> tuple[Any, Any]:
    """The churn scaler and model, loaded once per run (the floor is measured many times)."""
    import joblib

    scaler = joblib.load(artifacts / "transformer" / "scaler.pkl")
    return scaler, joblib.load(artifacts / "predictor" / "model.joblib")


def measure_floor(
    artifacts: Path,
    rows: int = 256,
    rounds: int = 5,
    seconds: float = 0.5,
    stat: Callable[[list[float]], float] = max,
) -> float:
    """Rows/s of ``scaler.transform`` + ``model.predict_proba`` on ``rows`` rows, in this process.

    ``stat`` of ``rounds`` short rounds: ``max`` (the run's headline floor) is what the
    hardware can do at its best moment; the floor next to each batched load is a median.
    """
    import numpy as np

    scaler, model = _floor_models(artifacts)
    x = np.array([list(ROW.values())] * rows, dtype=np.float64)
    for _ in range(5):
        model.predict_proba(scaler.transform(x))
    speeds = []
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            model.predict_proba(scaler.transform(x))
            n += 1
        speeds.append(rows * n / elapsed)
    return stat(speeds)


def adjacent_floor(artifacts: Path, rows: int) -> float:
    """The floor right now: median of four quarter-second rounds.

    This machine's speed drifts by tens of percent within minutes (shared host), so each
    batched load is compared with the floor measured right before and after it, with the
    server paused so that its idle background work does not lower the floor.
    """
    return measure_floor(artifacts, rows, rounds=4, seconds=0.25, stat=statistics.median)


def warm_up(server: Server, seconds: float) -> None:
    """Unmeasured load so lazy imports, connection pools and (for Ray) HAProxy reloads settle."""
    if seconds > 0:
        run_wrk(server.predict_url, request_body(1), 8, seconds)


def idle_cores(server: Server, seconds: float = 2.0) -> float:
    """Cores the server's whole process tree burns with no requests (Ray: GCS, raylet, controller)."""
    before = cpu_snapshot(server.pids, server.marker)
    time.sleep(seconds)
    return cpu_delta(before, cpu_snapshot(server.pids, server.marker)) / seconds


def bench_server(
    server: Server,
    kind: str,
    args: argparse.Namespace,
    batch: bool,
) -> tuple[list[Row], float]:
    """Warm up; measure idle CPU (cores); run the one-row sweep (and, for ours, the batched one)."""
    warm_up(server, args.warmup)
    idle = idle_cores(server)
    log(f"{server.name} idle: {idle:.2f} cores of background CPU (charged to requests in CPU ms/req)")
    rows: list[Row] = []
    loads = [(1, c, "v1") for c in args.concurrency]
    if batch:  # big requests: V1 rows of named features, one V2 [N, 5] tensor as JSON, and as raw bytes
        loads += [(args.batch_rows, c, proto) for proto in BATCH_PROTOCOLS for c in args.batch_concurrency]
    for n_rows, c, proto in loads:
        before = _wait_port_exclusive(server)
        if n_rows == 1:
            body, url, headers = request_body(1), server.predict_url, None
        else:
            body, url, headers = batch_load(proto, n_rows, server.predict_url)
        name = f"{server.name} {BATCH_PROTOCOLS[proto]}".rstrip()
        floor = None
        if n_rows > 1:
            with server.paused():
                floor = adjacent_floor(args.floor_artifacts, n_rows)
        result = measure(
            url, body, c, args.duration, server.pids, server.marker, n_rows, args.timeout, headers
        )
        if floor is not None:
            with server.paused():
                floor = (floor + adjacent_floor(args.floor_artifacts, n_rows)) / 2
        shared = tuple(sorted(set(before) | set(server.foreign_listeners())))
        rows.append(Row(name, kind, result, shared, floor))
        log(
            f"{name} rows={n_rows} c={c}: {result.req_s:.0f} req/s, p99 {result.p99_ms:.1f} ms, "
            f"{result.errors} errors" + (f"  INVALID: port shared with pids {list(shared)}" if shared else "")
        )
        time.sleep(1.0)
    return rows, idle


def _wait_port_exclusive(server: Server, wait_s: float = 90.0) -> list[int]:
    """Wait for foreign listeners on the server's port to go away; return those still there."""
    deadline = time.monotonic() + wait_s
    foreign = server.foreign_listeners()
    if foreign:
        log(f"another process (pids {foreign}) also listens on {server.ports}; waiting up to {wait_s:.0f} s")
    while foreign and time.monotonic() < deadline:
        time.sleep(2)
        foreign = server.foreign_listeners()
    return foreign


def resolve_target(spec: str) -> tuple[str, str] | None:
    """``(display name, serve run target)`` for a config path, alias or import path; None if missing."""
    target = spec
    if target.endswith((".yaml", ".yml")):
        path = (ROOT / target).resolve()
        if not path.exists():
            return None
        return path.stem, str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    return spec.split(":")[0].rsplit(".", 1)[-1].lstrip("_"), target


def pick(rows: Sequence[Row], server: str, c: int, n_rows: int = 1) -> LoadResult | None:
    """The valid result for ``server`` at concurrency ``c`` and ``n_rows`` rows per request, if any."""
    for row in rows:
        r = row.result
        if (
            row.server == server
            and r.concurrency == c
            and r.rows_per_request == n_rows
            and not row.shared_with
        ):
            return row.result
    return None


def _check(server: str, metric: str, value: float | None, goal: str, ok: bool) -> dict[str, Any]:
    return {
        "server": server,
        "metric": metric,
        "value": value,
        "goal": goal,
        "pass": None if value is None else ok,
    }


def ratios(rows: Sequence[Row], floor_rows_s: float | None, batch_rows: int) -> list[dict[str, Any]]:
    """Each of our servers against KServe and the floor, with PASS/FAIL per DESIGN §4 goal."""
    out: list[dict[str, Any]] = []
    k32 = pick(rows, "kserve", 32)
    for server in dict.fromkeys(base_server(r.server) for r in rows if r.kind == "ours"):
        o32, o64 = pick(rows, server, 32), pick(rows, server, 64)
        batches = [
            r
            for r in rows
            if base_server(r.server) == server
            and r.result.rows_per_request == batch_rows
            and not r.shared_with
            and r.result.errors == 0
        ]
        speedup = o32.req_s / k32.req_s if o32 and k32 and k32.req_s else None
        p99 = o32.p99_ms / k32.p99_ms if o32 and k32 and k32.p99_ms and o32.requests else None
        errors = float(o64.errors) if o64 else None
        pct = max((b.floor_pct for b in batches if b.floor_pct is not None), default=None)
        best = max((b.result.rows_s for b in batches), default=None)
        start_pct = 100.0 * best / floor_rows_s if best is not None and floor_rows_s else None
        out += [
            _check(server, "req/s ours/KServe @c=32", speedup, f">= {GOALS['req_s_ratio']:.0f}x",
                   speedup is not None and speedup >= GOALS["req_s_ratio"]),
            _check(server, "p99 ours/KServe @c=32", p99, f"<= {GOALS['p99_ratio']}",
                   p99 is not None and p99 <= GOALS["p99_ratio"]),
            _check(server, "errors @c=64", errors, "== 0", errors == GOALS["errors_c64"]),
            _check(server, f"{batch_rows}-row rows/s % adjacent floor", pct, f">= {GOALS['floor_pct']:.0f}%",
                   pct is not None and pct >= GOALS["floor_pct"]),
            _check(server, f"{batch_rows}-row rows/s % run-start floor", start_pct,
                   f">= {GOALS['floor_pct']:.0f}%",
                   start_pct is not None and start_pct >= GOALS["floor_pct"]),
        ]  # fmt: skip
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(
    rows: Sequence[Row],
    checks: Sequence[dict[str, Any]],
    floor_rows_s: float | None,
    idle: dict[str, float],
    floor_one_row: float | None = None,
) -> str:
    """The results table, the floor and the ratio checks as plain text."""
    head = (
        f"{'server':<34} {'rows':>4} {'c':>3} {'req/s':>8} {'rows/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/req':>10} {'errors':>6} {'other CPU':>9} {'% floor':>7}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        r = row.result
        lines.append(
            f"{row.server:<34} {r.rows_per_request:>4} {r.concurrency:>3} {r.req_s:>8.0f} {r.rows_s:>9.0f} "
            f"{r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {_fmt(r.cpu_ms_per_req, '>10.2f'):>10} {r.errors:>6} "
            f"{r.other_cores:>9.2f} {_fmt(row.floor_pct, '>7.0f'):>7}"
            + ("  INVALID (port shared)" if row.shared_with else "")
        )
    lines.append(
        f"in-process floor (256 rows), best 0.5 s of the run's start: {_fmt(floor_rows_s, ',.0f')} rows/s; "
        "'% floor' compares each batched load with the floor measured right around it"
    )
    lines.append(
        f"in-process floor (1 row per call, scaler + predict_proba): {_fmt(floor_one_row, ',.0f')} calls/s"
    )
    idles = ", ".join(f"{name} {cores:.2f}" for name, cores in idle.items())
    lines.append(f"idle CPU of each server tree, cores (included in CPU ms/req): {idles or '-'}")
    lines.append("")
    for c in checks:
        value = c["value"]
        shown = "n/a" if value is None else (f"{value:.0f}%" if "%" in c["metric"] else f"{value:.2f}")
        verdict = "n/a" if c["pass"] is None else ("PASS" if c["pass"] else "FAIL")
        lines.append(f"{c['server']:<24} {c['metric']:<30} {shown:>8}  goal {c['goal']:<7} {verdict}")
    busy = [r for r in rows if r.result.other_cores > 0.3]
    if busy:
        lines.append(
            f"\nWARNING: {len(busy)} load(s) ran while other work used > 0.3 cores ('other CPU'): "
            "this machine was shared; rerun on a quiet machine before trusting the ratios."
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per load (default 10)")
    p.add_argument("--only", choices=["kserve", "ours"], help="run one side only")
    p.add_argument(
        "--configs",
        nargs="+",
        default=list(DEFAULT_CONFIGS),
        help="Serve configs or import paths for `serve run`",
    )
    p.add_argument(
        "--concurrency", type=_ints, default=[1, 8, 32, 64], help="one-row loads (default 1,8,32,64)"
    )
    p.add_argument("--batch-rows", type=int, default=256, help="rows per batched request (default 256)")
    p.add_argument(
        "--batch-concurrency", type=_ints, default=[1, 4, 16], help="batched loads (default 1,4,16)"
    )
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each server's loads")
    p.add_argument(
        "--timeout", type=float, default=5.0, help="wrk request timeout in seconds (counted as errors)"
    )
    p.add_argument("--artifacts", type=Path, default=BENCH_DIR / "artifacts")
    p.add_argument("--ray-tmpdir", default="/tmp/rb", help="short RAY_TMPDIR for the Ray sessions")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results.json")
    return p.parse_args(argv)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table; write the JSON. Exit status 1 if a server failed to start."""
    args = parse_args(argv)
    started = time.monotonic()
    artifacts = args.floor_artifacts = _servers.build_artifacts(args.artifacts.resolve())
    log("measuring the in-process floor")
    floor = measure_floor(artifacts)
    floor_one_row = measure_floor(artifacts, rows=1)
    rows: list[Row] = []
    idle: dict[str, float] = {}
    skipped: list[str] = []
    failed: list[str] = []

    if args.only != "ours":
        python = _servers.ensure_kserve_venv()
        log("starting KServe predictor (:8081) and transformer (:8080)")
        server = _servers.start_kserve(python, artifacts)
        try:
            measured, idle[server.name] = bench_server(server, "kserve", args, batch=False)
            rows += measured
        finally:
            server.stop()

    if args.only != "kserve":
        for spec in args.configs:
            resolved = resolve_target(spec)
            if resolved is None:
                line = f"skipping {spec}: file does not exist yet"
                print(line, flush=True)
                skipped.append(line)
                continue
            name, target = resolved
            log(f"starting `serve run {target}` (:8000)")
            t0 = time.monotonic()
            try:
                server = _servers.start_serve(target, artifacts, f"ours:{name}", args.ray_tmpdir)
            except (RuntimeError, TimeoutError) as err:  # a broken config must not hide the others
                line = f"FAILED to start {spec}: {err}"
                print(line, flush=True)
                failed.append(line)
                continue
            log(f"{server.name} ready after {time.monotonic() - t0:.0f} s")
            try:
                measured, idle[server.name] = bench_server(server, "ours", args, batch=True)
                rows += measured
            finally:
                server.stop()

    checks = ratios(rows, floor, args.batch_rows)
    print(render(rows, checks, floor, idle, floor_one_row), flush=True)
    wall_s = round(time.monotonic() - started, 1)
    results = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duration_s": args.duration,
            "wall_s": wall_s,
            "skipped": skipped,
            "failed": failed,
        },
        "floor_rows_s": floor,
        "floor_one_row_calls_s": floor_one_row,
        "idle_cores": idle,
        "results": [r.as_dict() for r in rows],
        "checks": checks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    log(f"results written to {args.out} ({wall_s} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
