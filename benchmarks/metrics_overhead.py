"""What the request metrics cost on the in-process ASGI path (no cluster, no network).

The churn service (transformer + sklearn predictor, in this process; ``--model fake``: async
pass-through hooks and a predictor that returns zeros, so the path is mostly isvc's) behind
``create_app``, driven by httpx's ``ASGITransport`` with one-row V1 requests, sequentially (c=1) and 16 at a
time (c=16, the coalescer merges). One process runs this tree in blocks of ``--requests``
requests that alternate between the default recorder (``noop``: records nothing) and
:class:`pipelines._ray.metrics.RayRecorder` (``ray``; with ``--ray-init`` after ``ray.init()``, so
records go to a connected core worker as in a replica; Ray is imported in both, as in a replica);
with ``--base REV``, another process runs the tree of that revision (``git archive``, e.g. the
commit before the metrics) as ``base``, without Ray. Rounds alternate the two processes.

Wall-clock and CPU times swing by tens of percent on a shared machine; for a steady answer count
instructions instead (``valgrind --tool=callgrind``; the README's Metrics section has such counts).

Per mode and concurrency: the CPU time this process spent per request (``time.process_time``,
all its threads) and requests/s, the median over blocks and rounds, each against the first mode::

    python benchmarks/metrics_overhead.py --base 835a462 --requests 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROW = {"age": 41, "tenure_days": 30, "monthly_spend": 120.5, "support_tickets": 6, "last_login_days": 21}
CONCURRENCY = (1, 16)


class FakePredictor:
    ready = True

    def predict(self, batch: Any) -> Any:
        import numpy as np

        return np.zeros(len(batch))


def passthrough(name: str) -> Any:
    from transformers_.base import Transformer

    class Passthrough(Transformer):
        async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            return payload

        async def postprocess(self, response: Any, headers: dict[str, str] | None = None) -> Any:
            return response

    t = Passthrough(name)
    t.load()
    return t


async def _load(
    artifacts: Path, requests: int, blocks: list[tuple[str, Any]], fake: bool
) -> list[dict[str, Any]]:
    """Serve the churn graph in this process; per block ``(label, recorder or None)``, per
    concurrency: ``requests`` requests, measured."""
    import httpx

    from pipelines.dataplane import create_app, load_predictor, load_transformer
    from pipelines.routing import LocalSink, assemble, served_models
    from tests.helpers import churn_plan

    plan = churn_plan(artifacts)
    if fake:
        pipe = await assemble(plan, lambda node: LocalSink(FakePredictor()), passthrough(plan.name))
        body = json.dumps({"instances": [list(ROW.values())]}).encode()
    else:
        transformer = await load_transformer(plan)
        pipe = await assemble(plan, lambda node: LocalSink(load_predictor(plan.name, node)), transformer)
        body = json.dumps({"instances": [ROW]}).encode()
    app = create_app(served_models(pipe))
    url = "/v1/models/churn-classifier:predict"
    results = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://isvc") as c:

        async def one() -> None:
            r = await c.post(url, content=body)
            assert r.status_code == 200, r.text

        async def load(n: int, concurrency: int) -> None:
            for _ in range(n // concurrency):
                await asyncio.gather(*(one() for _ in range(concurrency)))

        await load(min(500, requests), 16)  # warm: threads, the inline decision, caches
        for label, rec in blocks:
            if rec is not None:
                from pipelines.dataplane.metrics import set_recorder

                set_recorder(rec)
            for concurrency in CONCURRENCY:
                start, cpu = time.perf_counter(), time.process_time()
                await load(requests, concurrency)
                n = requests // concurrency * concurrency
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu
                results.append({"mode": label, "c": concurrency, "cpu_us": cpu / n * 1e6, "rps": n / wall})
    return results


def worker(args: argparse.Namespace) -> None:
    blocks: list[tuple[str, Any]]
    if args.worker == "base":
        blocks = [("base", None)] * args.blocks
    else:
        if args.ray_init:
            import ray

            ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
        from pipelines._ray.metrics import RayRecorder
        from pipelines.dataplane.metrics import NoRecorder

        ray_rec = RayRecorder()
        blocks = [("noop", NoRecorder()), ("ray", ray_rec)] * (args.blocks // 2)
    print(json.dumps(asyncio.run(_load(Path(args.artifacts), args.requests, blocks, args.model == "fake"))))


def base_tree(rev: str, into: Path) -> Path:
    tar = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    (into / "benchmarks").mkdir(exist_ok=True)
    (into / "benchmarks" / "metrics_overhead.py").write_text(Path(__file__).read_text())
    return into


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000, help="requests per block and concurrency")
    p.add_argument("--blocks", type=int, default=4, help="blocks per process (noop and ray alternate)")
    p.add_argument("--rounds", type=int, default=2, help="processes per tree, interleaved")
    p.add_argument("--base", help="a git revision to compare against (its tree, in a temporary folder)")
    p.add_argument("--ray-init", action="store_true", help="ray.init() before the ray blocks")
    p.add_argument("--model", choices=["churn", "fake"], default="churn")
    p.add_argument("--artifacts", default=str(ROOT / "artifacts" / "churn"))
    p.add_argument("--worker", choices=["base", "tree"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"tree": ROOT} | ({"base": base_tree(args.base, Path(tmp))} if args.base else {})
        for r in range(args.rounds):
            for kind, tree in sorted(trees.items()):
                cmd = [sys.executable, str(tree / "benchmarks" / "metrics_overhead.py"), "--worker", kind]
                cmd += ["--requests", str(args.requests), "--blocks", str(args.blocks), "--model", args.model]
                cmd += ["--artifacts", args.artifacts] + (["--ray-init"] if args.ray_init else [])
                env = {**os.environ, "PYTHONPATH": str(tree)}
                out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"{kind} failed:\n{out.stderr[-3000:]}")
                got = json.loads(out.stdout.strip().splitlines()[-1])
                rows += got
                print(f"round {r + 1} {kind}: " + "; ".join(
                    f"{g['mode']} c={g['c']} {g['cpu_us']:.0f} us {g['rps']:.0f}/s" for g in got
                ))  # fmt: skip
    modes = [m for m in ("base", "noop", "ray") if any(g["mode"] == m for g in rows)]
    print(f"\nmedian over blocks ({args.requests} requests each) and rounds, vs {modes[0]}:")
    for c in CONCURRENCY:
        ref = {
            k: statistics.median(g[k] for g in rows if g["mode"] == modes[0] and g["c"] == c)
            for k in ("cpu_us", "rps")
        }
        for m in modes:
            cpu = statistics.median(g["cpu_us"] for g in rows if g["mode"] == m and g["c"] == c)
            rps = statistics.median(g["rps"] for g in rows if g["mode"] == m and g["c"] == c)
            print(
                f"  c={c:<3d} {m:5s} cpu {cpu:7.0f} us/req ({cpu / ref['cpu_us']:.3f})   "
                f"{rps:6.0f} req/s ({rps / ref['rps']:.3f})"
            )


if __name__ == "__main__":
    main()
