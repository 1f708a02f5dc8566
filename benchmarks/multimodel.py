"""Many models on few replicas: what a multiplexed model costs when it is not resident.

One run, on this machine: ``serve run configs/multi-model.yaml`` (24 tiny sklearn models, 2
predictor replicas of at most 4 models; on a free port, with Ray Serve ports of its own), then
one-row V1 requests, one at a time:

- ``cold load``: the first request to a model no replica holds while a replica has room (the
  first 8 models): routing to the replica with the fewest models, the load, the prediction;
- ``load on the replica``: the load alone (``load_predictor``), as the replicas timed it;
- ``warm hit``: requests to resident models (the baseline of the ratios);
- ``eviction``: the first request to a model while every replica is full (the other 16): the
  least recently used model there is evicted, then the model loads;
- ``index`` / ``unload``: the repository's broadcast to every predictor replica.

Each replica's first load and prediction (importing the runtime: seconds) happen before the
measurements, and each load is followed by a 0.5 s pause (routers learn what a replica holds from
a 0.1 s push; a router that has not heard yet may put two cold models on one replica). p50 and p90
of each, each p50 against the warm hit's measured in the same run; the replicas' own counters
(``GET /v2/repository/replicas``) confirm that the cold loads evicted nothing, the warm hits loaded
nothing and each eviction request evicted one model. Writes ``.bench/multimodel.json``::

    python benchmarks/multimodel.py               # ~2 min, mostly starting Ray
    python benchmarks/multimodel.py --warm 500
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/multimodel.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402

from benchmarks._servers import BENCH_DIR, ROOT, Server, log  # noqa: E402
from pipelines.settings import serve_env  # noqa: E402

CONFIG = "configs/multi-model.yaml"
ARTIFACTS = ROOT / "artifacts" / "multimodel"
N_MODELS, CAP, REPLICAS = 24, 4, 2
ROW = [[0.0, 0.0, 0.0, 0.0]]


def build_artifacts() -> None:
    if not (ARTIFACTS / "catalog.json").exists():
        log(f"building the models into {ARTIFACTS}")
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_multimodel.py"), str(ARTIFACTS)], check=True
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_block(size: int = 50) -> int:
    """The first port of ``size`` consecutive ports in 20000-29999 that nothing listens on."""
    busy = {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.laddr and c.status == "LISTEN"}
    while True:
        base = random.randrange(20000, 30000 - size)
        if not busy & set(range(base, base + size)):
            return base


def own_ports() -> dict[str, str]:
    """Ports and files of this run's own, apart from any other Ray Serve on this machine.

    HAProxy's stats/metrics ports and files, the fallback proxy's ports (8500/8510 by default) and
    the direct-ingress replicas' ports: each Ray cluster hands those out from 30000 (HTTP) and
    40000 (gRPC) without knowing about the other clusters, so a second one on the host has its
    HAProxy send requests to the first one's proxy or replicas.
    """
    folder = Path(tempfile.mkdtemp(prefix="hx-", dir="/tmp"))  # short: unix socket paths
    http, grpc = free_block(), free_block()
    return {
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(folder / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(folder / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(folder / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(folder / "metrics.sock"),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(http),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(http + 49),
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(grpc),
        "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(grpc + 49),
    }


def start(ray_tmpdir: str) -> Server:
    """``serve run configs/multi-model.yaml`` on a new local Ray, on a free port (HAProxy shares a
    port it finds in use with SO_REUSEPORT); ready once ``/v2/health/ready`` is 200."""
    port = free_port()
    config = yaml.safe_load((ROOT / CONFIG).read_text())
    config["http_options"]["port"] = port
    path = BENCH_DIR / "multimodel.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    Path(ray_tmpdir).mkdir(parents=True, exist_ok=True)
    env = {**serve_env(), "RAY_ADDRESS": "local", "RAY_TMPDIR": ray_tmpdir, **own_ports()}
    server = Server("ours:multimodel", f"http://127.0.0.1:{port}", (port,))
    try:
        server.launch([str(Path(sys.executable).with_name("serve")), "run", str(path)], "multimodel", env)
        server.wait_ready("/v2/health/ready", 300.0, base_url=server.base_url)
    except BaseException:
        server.stop()
        raise
    return server


def timed_predict(c: httpx.Client, model: str) -> float:
    start = time.perf_counter()
    r = c.post(f"/v1/models/{model}:predict", json={"instances": ROW})
    took = (time.perf_counter() - start) * 1000
    if r.status_code != 200 or abs(r.json()["predictions"][0] - int(model[-2:])) > 1e-6:
        raise RuntimeError(f"{model}: {r.status_code} {r.text[:300]}")
    return took


def timed(c: httpx.Client, method: str, path: str, **kw: Any) -> float:
    start = time.perf_counter()
    r = c.request(method, path, **kw)
    took = (time.perf_counter() - start) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
    return took


def replica_states(c: httpx.Client) -> list[dict[str, Any]]:
    r = c.get("/v2/repository/replicas")
    if r.status_code != 200:
        raise RuntimeError(f"/v2/repository/replicas: {r.status_code} {r.text[:300]}")
    states: list[dict[str, Any]] = r.json()["replicas"]
    return states


def counters(c: httpx.Client) -> dict[str, int]:
    return {k: sum(s[k] for s in replica_states(c)) for k in ("loads", "evictions", "unloads")}


def wait_replicas(c: httpx.Client, timeout_s: float = 120.0) -> None:
    """Until both predictor replicas answer (the ingress is ready before they are)."""
    deadline = time.monotonic() + timeout_s
    while len(replica_states(c)) < REPLICAS:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {REPLICAS} predictor replicas after {timeout_s:.0f} s")
        time.sleep(1.0)


def summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {"n": len(samples), "p50_ms": statistics.median(samples), "p90_ms": p90}


SETTLE_S = 0.5
"""Pause after a load: a replica pushes what it holds to the routers every 0.1 s, and a router
that has not heard yet picks from stale counts (two cold models may land on one replica)."""


def resident(c: httpx.Client) -> list[str]:
    return [m["name"] for s in replica_states(c) for m in s["models"]]


def run(c: httpx.Client, warm_n: int) -> dict[str, Any]:
    names = [f"model-{i:02d}" for i in range(N_MODELS)]
    room = REPLICAS * CAP
    wait_replicas(c)
    for _ in range(5):  # the ingress's own first requests, no model involved
        timed(c, "GET", "/v1/models")
    # Each replica's first load and first prediction import the runtime and sklearn's predict
    # path (seconds): pay that outside the measurements, then start from empty replicas.
    spare = iter(names[room:])
    while any(s["loads"] == 0 for s in replica_states(c)):
        model = next(spare)
        for _ in range(3):
            timed_predict(c, model)
        time.sleep(SETTLE_S)
    for m in resident(c):
        timed(c, "POST", f"/v2/repository/models/{m}/unload")
    time.sleep(SETTLE_S)
    before = counters(c)
    cold = []
    for m in names[:room]:
        cold.append(timed_predict(c, m))
        time.sleep(SETTLE_S)
    after_cold = counters(c)
    held = resident(c)
    load_ms = [m["load_ms"] for st in replica_states(c) for m in st["models"]]  # the replicas' own timing
    for m in held:
        timed_predict(c, m)  # the first warm hit of each model (its V2 tensors are learnt then)
    warm = [timed_predict(c, held[i % len(held)]) for i in range(warm_n)]
    after_warm = counters(c)
    evict = []
    for m in names[room:]:
        evict.append(timed_predict(c, m))
        time.sleep(SETTLE_S)
    after_evict = counters(c)
    index = [timed(c, "POST", "/v2/repository/index", json={}) for _ in range(20)]
    unload = [timed(c, "POST", f"/v2/repository/models/{m}/unload") for m in resident(c)]
    checks = {
        "cold loads evicted nothing": after_cold["evictions"] == before["evictions"]
        and after_cold["loads"] - before["loads"] == room,
        "warm hits loaded nothing": after_warm["loads"] == after_cold["loads"],
        "each eviction request evicted one model": (
            after_evict["evictions"] - after_warm["evictions"] == len(names) - room
        ),
    }
    return {
        "cold load": summary(cold),
        "load on the replica": summary(load_ms),
        "warm hit": summary(warm),
        "eviction": summary(evict),
        "index": summary(index),
        "unload": summary(unload),
        "checks": checks,
        "counters": {"before": before, "cold": after_cold, "warm": after_warm, "end": after_evict},
    }


def report(results: dict[str, Any]) -> str:
    base = results["warm hit"]["p50_ms"]
    lines = ["| request | n | p50 | p90 | p50 vs warm hit |", "|---|---|---|---|---|"]
    for case in ("warm hit", "cold load", "load on the replica", "eviction", "index", "unload"):
        r = results[case]
        lines.append(
            f"| {case} | {r['n']} | {r['p50_ms']:.1f} ms | {r['p90_ms']:.1f} ms | {r['p50_ms'] / base:.1f}× |"
        )
    extra = results["eviction"]["p50_ms"] - results["cold load"]["p50_ms"]
    lines.append("")
    lines.append(
        f"eviction request over a cold load (p50): {extra:+.1f} ms; 'load on the replica' is "
        "load_predictor alone, as the replicas timed it"
    )
    lines += [f"check: {k}: {'ok' if v else 'FAILED'}" for k, v in results["checks"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warm", type=int, default=200, help="warm-hit requests")
    p.add_argument("--ray-tmpdir", default="/tmp/rb")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "multimodel.json")
    args = p.parse_args(argv)
    build_artifacts()
    log(f"starting `serve run {CONFIG}`")
    server = start(args.ray_tmpdir)
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as c:
            results = run(c, args.warm)
    finally:
        server.stop()
    print(report(results), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
