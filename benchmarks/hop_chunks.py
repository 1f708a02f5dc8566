"""Big requests across the ingress → predictor hop: one whole call against the same rows in chunks.

Ray's replica gRPC messages are limited to 4 MiB unless ``RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH``
raises it (isvc raises it to 512 MiB, pipelines/serve.env). The alternative is to cut a big batch
into chunks under the limit and send them concurrently. This measures both in one run, on a real
local Ray cluster, through a Serve handle with gRPC transport, against the churn predictor::

    .venv/bin/python benchmarks/hop_chunks.py artifacts/churn --rows 200000 --repeat 5

It prints seconds per request (best of ``--repeat``) and each chunked form's ratio to the whole call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.settings import serve_env  # noqa: E402

os.environ.update(serve_env())
os.environ.setdefault("RAY_TMPDIR", "/tmp/isvc-hop")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifacts", type=Path, help="folder with predictor/model.joblib (make artifacts)")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--chunks", type=int, nargs="+", default=[2, 4, 8, 16])
    args = p.parse_args()

    import ray
    from ray import serve

    from pipelines._ray import PredictorDeployment, deployment_options
    from pipelines.plan import PredictorNode, Resources, Scaling

    Path(os.environ["RAY_TMPDIR"]).mkdir(parents=True, exist_ok=True)
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        node = PredictorNode(
            runtime="sklearn",
            storage_uri=str((args.artifacts / "predictor").resolve()),
            args={"method": "predict_proba"},
        )
        opts = deployment_options(Scaling(), Resources(num_cpus=1))
        handle = serve.run(
            PredictorDeployment.options(name="predictor", **opts).bind("churn", node),
            name="hop-chunks",
            route_prefix=None,
        )
        x = np.random.default_rng(0).random((args.rows, 5))

        async def whole() -> None:
            out = await handle.predict.remote(x)
            assert len(out) == args.rows

        def chunked(k: int):  # noqa: ANN202
            async def run() -> None:
                parts = await asyncio.gather(*(handle.predict.remote(c) for c in np.array_split(x, k)))
                assert sum(len(q) for q in parts) == args.rows

            return run

        async def best(fn) -> float:  # noqa: ANN001
            await fn()  # warm-up
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                await fn()
                times.append(time.perf_counter() - t)
            return min(times)

        async def measure() -> None:
            base = await best(whole)
            print(f"rows={args.rows} ({x.nbytes / 2**20:.1f} MiB float64), best of {args.repeat}")
            print(f"whole call         {base * 1000:8.1f} ms   1.00x")
            for k in args.chunks:
                t = await best(chunked(k))
                print(f"{k:3d} chunks at once  {t * 1000:8.1f} ms   {t / base:.2f}x the whole call's time")
            from pipelines.batching import HOP_CHUNK_BYTES, chunk_rows

            k = len(chunk_rows(x))
            t = await best(chunked(k))
            mib = HOP_CHUNK_BYTES / 2**20
            print(f"isvc's rule: {k} chunks of <= {mib:g} MiB  {t * 1000:8.1f} ms   {t / base:.2f}x")
            await serve.shutdown_async()  # on this loop: the handle's router lives here

        asyncio.run(measure())
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
