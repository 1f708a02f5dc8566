"""GPU check (issue 3): single-row requests at c=64 through isvc's own graph, DistilBERT size.

The graph is the one ``pipelines.app.build_app`` makes for any InferenceService: HAProxy
direct ingress → ingress replicas (the text transformer tokenizes into fixed-length int64
arrays; rows of concurrent requests are coalesced) → one GPU predictor replica that merges
the ingress replicas' calls again (``@serve.batch``) and runs the model. The raw model
speed is measured in the same run. One JSON line per figure; the last line is the verdict
against the goal (>= 5,000 rows/s at c=64).

On the device machine (see ../shared/gpu/README.md; Ray carried as wheels)::

    python3 -m benchmarks.gpu_check --seconds 10 --ingress 1 2 4

Here, on the CPU, a small model proves the script end to end::

    .venv/bin/python -m benchmarks.gpu_check --tiny --seconds 3 --ingress 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.settings import serve_env  # noqa: E402 - isvc's Serve settings, one place

os.environ.update(serve_env())
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

from predictors.base import Predictor  # noqa: E402
from transformers_.base import Transformer  # noqa: E402

SEQ_LEN = 32
PORT = 8000
GOAL_ROWS_S = 5000.0
WORDS = (
    "the support ticket was handled well badly quickly slowly great terrible service product refund".split()
)


def report(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TextTransformer(Transformer):
    """Tokenizes ``{"instances": ["text", ...]}`` into ``[N, SEQ_LEN]`` int64 ids."""

    def load(self) -> bool:
        from tokenizers import Tokenizer

        assert self.model_dir is not None
        self.tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self.tok.enable_padding(length=SEQ_LEN, pad_id=0)
        self.tok.enable_truncation(SEQ_LEN)
        self.ready = True
        return True

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> np.ndarray:
        texts = [t if isinstance(t, str) else t["text"] for t in payload["instances"]]
        return np.array([e.ids for e in self.tok.encode_batch(texts)], dtype=np.int64)


class DistilBertPredictor(Predictor):
    """A DistilBERT classifier from a local folder (``save_pretrained``), on the GPU if any."""

    def load(self, model_dir: str | Path | None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification

        self.torch = torch
        self.dev = device()
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval().to(self.dev)
        self.ready = True

    def predict(self, batch: Any) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            ids = torch.from_numpy(np.asarray(batch, dtype=np.int64)).to(self.dev)
            logits = self.model(input_ids=ids, attention_mask=(ids != 0).long()).logits
            return logits.softmax(-1).float().cpu().numpy()


def text(i: int) -> str:
    return " ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 9))


def prepare(folder: Path, tiny: bool) -> tuple[Path, Path]:
    """Train a word-level tokenizer from generated text; save a randomly initialised model."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoModelForSequenceClassification, DistilBertConfig

    tok_dir, model_dir = folder / "tokenizer", folder / "model"
    tok_dir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        (text(i) for i in range(2000)), trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"])
    )
    tok.save(str(tok_dir / "tokenizer.json"))
    small = {"n_layers": 1, "dim": 64, "hidden_dim": 128, "n_heads": 2} if tiny else {}
    cfg = DistilBertConfig(vocab_size=max(tok.get_vocab_size(), 32), num_labels=2, **small)
    AutoModelForSequenceClassification.from_config(cfg).save_pretrained(str(model_dir))
    return tok_dir, model_dir


def raw_speed(tok_dir: Path, model_dir: Path, seconds: float) -> None:
    t = TextTransformer("raw")
    t.model_dir = tok_dir
    t.load()
    p = DistilBertPredictor("raw")
    p.load(model_dir)
    for bs in (1, 64, 256):
        x = asyncio.run(t.preprocess({"instances": [text(i) for i in range(bs)]}))
        p.predict(x)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            p.predict(x)
            n += bs
        report(what="raw", device=p.dev, batch=bs, rows_per_s=round(n / (time.perf_counter() - start), 1))


def _client(conc: int, seconds: float, q: Any) -> None:
    import httpx

    async def run() -> tuple[int, int]:
        ok = err = 0
        stop = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", limits=limits, timeout=30) as c:

            async def worker(i: int) -> None:
                nonlocal ok, err
                body = json.dumps({"instances": [text(i)]}).encode()
                while time.perf_counter() < stop:
                    try:
                        r = await c.post("/v1/models/sentiment:predict", content=body)
                        ok += r.status_code == 200
                        err += r.status_code != 200
                    except httpx.HTTPError:
                        err += 1

            await asyncio.gather(*(worker(i) for i in range(conc)))
        return ok, err

    q.put(asyncio.run(run()))


def load(total_conc: int, procs: int, seconds: float) -> tuple[float, int]:
    q: Any = mp.Queue()
    ps = [mp.Process(target=_client, args=(total_conc // procs, seconds, q)) for _ in range(procs)]
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    return sum(r[0] for r in results) / seconds, sum(r[1] for r in results)


def serve_graph(tok_dir: Path, model_dir: Path, k_ingress: int, gpu: bool) -> None:
    from ray import serve

    from pipelines.app import build_app
    from pipelines.plan import Batching, PredictorNode, Resources, Scaling, ServicePlan, TransformerNode

    plan = ServicePlan(
        name="sentiment",
        namespace="bench",
        predictor=PredictorNode(
            runtime="benchmarks.gpu_check:DistilBertPredictor",
            storage_uri=str(model_dir),
            resources=Resources(num_cpus=1, num_gpus=1 if gpu else None),
            scaling=Scaling(max_ongoing_requests=1024),
            batching=Batching(max_batch_size=256, max_latency_ms=2.0),
        ),
        transformer=TransformerNode(
            class_path="benchmarks.gpu_check:TextTransformer",
            storage_uri=str(tok_dir),
            scaling=Scaling(min_replicas=k_ingress, max_replicas=k_ingress, max_ongoing_requests=1024),
            resources=Resources(num_cpus=1),
        ),
        coalesce_window_ms=2.0,
        coalesce_max_rows=256,
    )
    serve.run(build_app(plan), name=plan.app_name, route_prefix="/")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--ingress", type=int, nargs="+", default=[1, 2, 4], help="ingress replica counts to try")
    ap.add_argument("--conc", type=int, default=64)
    ap.add_argument("--procs", type=int, default=4, help="client processes sharing --conc connections")
    ap.add_argument("--tiny", action="store_true", help="a small model (CPU smoke test)")
    args = ap.parse_args(argv)

    import ray
    from ray import serve

    folder = Path(tempfile.mkdtemp(prefix="isvc-gpu-"))
    tok_dir, model_dir = prepare(folder, args.tiny)
    gpu = device() == "cuda"
    raw_speed(tok_dir, model_dir, min(args.seconds, 3.0))
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    best = 0.0
    try:
        for k in args.ingress:
            serve_graph(tok_dir, model_dir, k, gpu)
            load(16, min(args.procs, 2), 2.0)  # warm-up
            rows_s, errors = load(args.conc, args.procs, args.seconds)
            best = max(best, rows_s if errors == 0 else 0.0)
            report(
                what="http",
                ingress_replicas=k,
                concurrency=args.conc,
                rows_per_s=round(rows_s, 1),
                errors=errors,
            )
            serve.delete("bench-sentiment")
    finally:
        serve.shutdown()
        ray.shutdown()
    verdict = "PASS" if best >= GOAL_ROWS_S else "FAIL"
    report(
        what="verdict",
        goal_rows_per_s=GOAL_ROWS_S,
        best_rows_per_s=round(best, 1),
        device=device(),
        result=verdict,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
