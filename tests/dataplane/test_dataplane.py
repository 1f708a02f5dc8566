"""The V1/V2 data plane in-process (httpx → ASGI), with the real churn transformer and
sklearn predictor behind a coalescer — no Ray."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipelines.dataplane import ModelPipeline, create_app
from pipelines.plan import ServicePlan, TransformerNode
from tests.helpers import FEATURES, ROW, churn_plan, expected_prob, make_client


@pytest.fixture
async def client(churn_artifacts: Path):
    async with await make_client(churn_plan(churn_artifacts)) as c:
        yield c


async def test_v1_predict_returns_probability_and_tier(client, churn_artifacts):
    r = await client.post("/v1/models/churn-classifier:predict", json={"instances": [ROW]})
    assert r.status_code == 200, r.text
    (pred,) = r.json()["predictions"]
    p = expected_prob(churn_artifacts, [list(ROW.values())])[0]
    assert pred["churn_probability"] == pytest.approx(round(p, 4))
    assert pred["risk_tier"] == ("HIGH" if p > 0.7 else "MEDIUM" if p > 0.3 else "LOW")


async def test_v1_accepts_lists_of_values(client, churn_artifacts):
    rows = [[41, 30, 120.5, 6, 21], [25, 2000, 20.0, 0, 1]]
    r = await client.post("/v1/models/churn-classifier:predict", json={"instances": rows})
    assert r.status_code == 200
    probs = [p["churn_probability"] for p in r.json()["predictions"]]
    assert probs == pytest.approx(np.round(expected_prob(churn_artifacts, rows), 4).tolist())
    assert probs[0] > probs[1]


async def test_v2_infer_one_tensor_echoes_id(client, churn_artifacts):
    body = {
        "id": "req-7",
        "inputs": [{"name": "features", "shape": [1, 5], "datatype": "FP32", "data": [41, 30, 120.5, 6, 21]}],
    }
    r = await client.post("/v2/models/churn-classifier/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "req-7" and out["model_name"] == "churn-classifier"
    named = {o["name"]: o for o in out["outputs"]}
    assert named["risk_tier"]["datatype"] == "BYTES"
    assert named["churn_probability"]["data"][0] == pytest.approx(
        expected_prob(churn_artifacts, [[41, 30, 120.5, 6, 21]])[0], rel=1e-5
    )


async def test_v2_named_feature_tensors_and_requested_outputs(client):
    inputs = [{"name": f, "shape": [2], "datatype": "FP64", "data": [ROW[f], ROW[f]]} for f in FEATURES]
    body = {"inputs": inputs, "outputs": [{"name": "risk_tier"}], "parameters": {"trace": True}}
    r = await client.post("/v2/models/churn-classifier/versions/1/infer", json=body)
    assert r.status_code == 200, r.text
    outputs = r.json()["outputs"]
    assert [o["name"] for o in outputs] == ["risk_tier"]
    assert outputs[0]["shape"] == [2]


async def test_health_and_metadata(client):
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    assert (await client.get("/v2/health/ready")).status_code == 200
    assert (await client.get("/v2")).json()["name"] == "isvc"
    assert (await client.get("/v1/models")).json() == {"models": ["churn-classifier"]}
    assert (await client.get("/v1/models/churn-classifier")).json() == {
        "name": "churn-classifier",
        "ready": True,
        "traffic": [{"tag": "latest", "revision": "predictor", "percent": 100, "ready": True}],
    }
    meta = (await client.get("/v2/models/churn-classifier")).json()
    # The endpoint's tensors (the transformer's declaration), not the sklearn model's.
    assert meta["inputs"] == [{"name": "features", "datatype": "FP64", "shape": [-1, 5]}]
    assert meta["outputs"] == [
        {"name": "churn_probability", "datatype": "FP64", "shape": [-1]},
        {"name": "risk_tier", "datatype": "BYTES", "shape": [-1]},
    ]
    assert meta["platform"] == "sklearn" and meta["versions"] == ["1"]
    assert (await client.get("/v2/models/churn-classifier/ready")).json()["ready"] is True


BAD_REQUESTS = [
    ("/v1/models/churn-classifier:predict", b'{"instances": [', 400, "malformed JSON"),
    ("/v1/models/churn-classifier:predict", b'{"rows": []}', 400, "instances"),
    ("/v1/models/churn-classifier:predict", b'{"instances": [{"age": 1}]}', 400, "missing"),
    ("/v1/models/churn-classifier:predict", b'{"instances": [[1, 2, 3]]}', 400, "instances[0]"),
    ("/v1/models/churn-classifier:predict", b'{"instances": [["a", 2, 3, 4, 5]]}', 400, "number"),
    (
        "/v2/models/churn-classifier/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP32"}]}',
        400,
        "data",
    ),
    (
        "/v2/models/churn-classifier/infer",
        b'{"inputs": [{"name": "x", "shape": [2, 5], "datatype": "FP32", "data": [1, 2, 3]}]}',
        400,
        "shape",
    ),
    (
        "/v2/models/churn-classifier/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP99", "data": [1, 2, 3, 4, 5]}]}',
        400,
        "FP99",
    ),
    ("/v2/models/churn-classifier/infer", b"[1, 2]", 400, "object"),
    ("/v1/models/nope:predict", b'{"instances": [[1, 2, 3, 4, 5]]}', 404, "nope"),
    ("/v2/models/nope/infer", b'{"inputs": []}', 404, "nope"),
]


@pytest.mark.parametrize(("path", "body", "status", "needle"), BAD_REQUESTS)
async def test_bad_requests_get_4xx_json_and_server_keeps_serving(client, path, body, status, needle):
    r = await client.post(path, content=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    ok = await client.post("/v1/models/churn-classifier:predict", json={"instances": [ROW]})
    assert ok.status_code == 200


async def test_unknown_route_is_json_404(client):
    r = await client.get("/v3/whatever")
    assert r.status_code == 404 and "error" in r.json()


async def test_concurrent_requests_coalesce_and_bad_rows_fail_alone(client, churn_artifacts):
    good = [client.post("/v1/models/churn-classifier:predict", json={"instances": [ROW]}) for _ in range(20)]
    bad = client.post("/v1/models/churn-classifier:predict", content=b'{"instances": [[1e999, 1, 1, 1, 1]]}')
    results = await asyncio.gather(*good, bad)
    assert [r.status_code for r in results[:-1]] == [200] * 20
    assert results[-1].status_code == 400


class Exploding:
    def __init__(self, name, predictor_host):
        self.name, self.ready = name, False

    def load(self):
        self.ready = True
        return True

    def preprocess(self, payload, headers=None):
        raise KeyError("boom")


async def test_user_hook_exception_is_500_naming_the_hook(churn_artifacts, monkeypatch):
    import tests.dataplane.test_dataplane as me

    plan = churn_plan(churn_artifacts)
    plan = ServicePlan(
        name=plan.name,
        namespace=plan.namespace,
        predictor=plan.predictor,
        transformer=TransformerNode(class_path=f"{me.__name__}:Exploding"),
    )
    async with await make_client(plan) as c:
        r = await c.post("/v1/models/churn-classifier:predict", json={"instances": [ROW]})
        assert r.status_code == 500
        assert "preprocess raised KeyError" in r.json()["error"]
        assert (await c.get("/v2/health/live")).status_code == 200


async def test_not_ready_is_503_and_overload_is_503():
    import numpy as np

    async def predict(batch):
        await asyncio.sleep(0.05)
        return np.zeros(len(batch))

    loading = ModelPipeline("m", predict=predict, ready=lambda: False)
    app = create_app({"m": loading})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/v1/models/m:predict", json={"instances": [[1.0]]})
        assert r.status_code == 503 and "not ready" in r.json()["error"]
        assert (await c.get("/v2/models/m/ready")).status_code == 503
        assert (await c.get("/v2/health/ready")).status_code == 503
        assert (await c.get("/v2/health/live")).status_code == 200

    app = create_app({"m": ModelPipeline("m", predict=predict)}, max_inflight=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        rs = await asyncio.gather(
            *(c.post("/v1/models/m:predict", json={"instances": [[1.0]]}) for _ in range(6))
        )
        codes = sorted(r.status_code for r in rs)
        assert codes.count(200) == 2 and codes.count(503) == 4
        assert all("overloaded" in r.json()["error"] for r in rs if r.status_code == 503)
        assert (await c.post("/v1/models/m:predict", json={"instances": [[1.0]]})).status_code == 200


async def test_component_timeout_is_504_and_server_keeps_serving():
    import numpy as np

    async def predict(batch):
        if batch[0][0] > 0:
            await asyncio.sleep(1.0)
        return np.zeros(len(batch))

    app = create_app({"m": ModelPipeline("m", predict=predict)}, timeout_s=0.05)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        slow = await c.post("/v1/models/m:predict", json={"instances": [[1.0]]})
        assert slow.status_code == 504 and "timeout of 0.05s" in slow.json()["error"]
        fast = await c.post("/v1/models/m:predict", json={"instances": [[0.0]]})
        assert fast.status_code == 200 and fast.json() == {"predictions": [0.0]}


def one_feature_sklearn(folder: Path) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    folder.mkdir()
    x = np.arange(20, dtype=float).reshape(-1, 1)
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 9).astype(int)), folder / "model.joblib")
    return folder


def tiny_bert(folder: Path) -> Path:
    """A random-weight one-layer BERT classifier and the sentiment script's word-level tokenizer."""
    import importlib.util

    import torch
    import transformers as tf

    from tests.helpers import ROOT

    spec = importlib.util.spec_from_file_location("build_sentiment", ROOT / "scripts" / "build_sentiment.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    tokenizer = script.build_tokenizer(script.POSITIVE + script.NEGATIVE)
    torch.manual_seed(0)
    config = tf.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    tf.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


async def test_v2_zero_d_tensor_is_one_row(tmp_path, churn_artifacts):
    """KServe's sample sends one item with ``shape: []``: one row, not a 500 (``len()`` of a 0-d array)."""
    from pipelines.plan import PredictorNode

    cases = [  # beside the shape that answers the same: a text per row; a row of one feature
        ("huggingface", tiny_bert(tmp_path / "hf"), [1], {"datatype": "BYTES", "data": ["great"]}),
        ("sklearn", one_feature_sklearn(tmp_path / "sk"), [1, 1], {"datatype": "FP64", "data": [15.0]}),
    ]
    for runtime, folder, same, tensor in cases:
        plan = ServicePlan(
            name="m", namespace="default", predictor=PredictorNode(runtime=runtime, storage_uri=str(folder))
        )
        async with await make_client(plan) as c:
            outs = []
            for shape in ([], same):
                body = {"inputs": [{"name": "input-0", "shape": shape, **tensor}]}
                r = await c.post("/v2/models/m/infer", json=body)
                assert r.status_code == 200, (runtime, shape, r.text)
                (out,) = r.json()["outputs"]
                assert out["shape"] == [1], (runtime, out)
                outs.append(out["data"])
            assert outs[0] == outs[1]
    assert outs[0] == [1]  # sklearn: 15 > 9
    async with await make_client(churn_plan(churn_artifacts)) as c:  # 5 features: 400, not 500
        body = {"inputs": [{"name": "features", "shape": [], "datatype": "FP64", "data": [41.0]}]}
        r = await c.post("/v2/models/churn-classifier/infer", json=body)
        assert r.status_code == 400, r.text
