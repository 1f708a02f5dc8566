"""Dynamic batching (``predictor.batcher``) on vs off: single-instance churn requests at c=64.

One run, on this machine: the churn service (transformer + sklearn predictor) under
``serve run``, loaded with one-row V1 requests by wrk, four ways:

- ``off``: no batcher, and the ingress coalescer off too (``isvc.dev/coalesce-window-ms: "0"``):
  one model call per request, as a server without batching does it;
- ``batcher``: KServe's ``batcher: {maxBatchSize, maxLatency}`` in the predictor replica, coalescer off;
- ``coalescer``: isvc's default, no batcher: the ingress merges concurrent requests' rows into
  one predictor call (window 1 ms);
- ``both``: the coalescer and the batcher.

rows/s, p50/p99 and errors side by side, and each against ``off``.
Writes ``.bench/batching.json``::

    python benchmarks/batching.py                       # c=64, 10 s per load
    python benchmarks/batching.py --max-batch 64 --max-latency 2
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/batching.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from benchmarks import _servers  # noqa: E402
from benchmarks._servers import BENCH_DIR, ROOT, log  # noqa: E402
from benchmarks.load import measure, request_body  # noqa: E402


def config_with(batcher: dict[str, Any] | None, coalesce: bool) -> dict[str, Any]:
    """``configs/churn.yaml``'s service without its explainer, with ``batcher`` on the predictor."""
    serve_cfg = yaml.safe_load((ROOT / "configs" / "churn.yaml").read_text())
    isvc = yaml.safe_load((ROOT / "configs" / "isvc" / "churn.yaml").read_text())
    isvc["spec"].pop("explainer", None)
    if batcher:
        isvc["spec"]["predictor"]["batcher"] = batcher
    if not coalesce:
        isvc["metadata"]["annotations"]["isvc.dev/coalesce-window-ms"] = "0"
    cfg = copy.deepcopy(serve_cfg)
    cfg["applications"] = cfg["applications"][:1]  # not the explainer's own application
    cfg["applications"][0]["args"] = isvc
    return cfg


def run_one(
    name: str, batcher: dict[str, Any] | None, coalesce: bool, args: argparse.Namespace
) -> dict[str, Any]:
    path = BENCH_DIR / f"batching-{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_with(batcher, coalesce), sort_keys=False))
    log(f"starting `serve run {path.name}` ({name})")
    server = _servers.start_serve(str(path), ROOT / "artifacts" / "churn", f"ours:{name}", args.ray_tmpdir)
    try:
        body = request_body(1)
        measure(server.predict_url, body, args.concurrency, 3, server.pids, server.marker)  # warm
        r = measure(server.predict_url, body, args.concurrency, args.duration, server.pids, server.marker)
    finally:
        server.stop()
    return {"rows_s": r.req_s, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "errors": r.errors}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-latency", type=float, default=5.0, help="milliseconds")
    p.add_argument("--ray-tmpdir", default="/tmp/rb")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "batching.json")
    args = p.parse_args(argv)
    batcher = {"maxBatchSize": args.max_batch, "maxLatency": args.max_latency}
    variants = {
        "off": (None, False),
        "batcher": (batcher, False),
        "coalescer": (None, True),
        "both": (batcher, True),
    }
    results = {name: run_one(name, b, c, args) for name, (b, c) in variants.items()}
    off = results["off"]["rows_s"]
    lines = ["| how | rows/s | vs off | p50 | p99 | errors |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['rows_s']:.0f} | {r['rows_s'] / off:.2f}× | {r['p50_ms']:.1f} ms | "
            f"{r['p99_ms']:.1f} ms | {r['errors']} |"
        )
    print(
        "\n".join(lines)
        + f"\n\nsingle-instance requests at c={args.concurrency}; batcher: maxBatchSize {args.max_batch}, "
        f"maxLatency {args.max_latency:g} ms",
        flush=True,
    )
    summary = {"batcher": batcher, "concurrency": args.concurrency, **results}
    args.out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
