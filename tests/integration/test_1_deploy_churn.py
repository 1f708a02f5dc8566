"""The README's cluster recipe on a real Ray cluster: ``serve deploy configs/churn*.yaml``, then
V1/V2 over real HTTP (httpx and tritonclient), ``serve status``, big requests, errors, and the
churn service's Anchor explainer (``:explain`` and ``churn-classifier-explainer``), and the
per-model metrics on Ray's metrics endpoint."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
import yaml

from pipelines.protocol import HEADER
from tests.helpers import ROW
from tests.integration.cluster import CHURN_DEPLOYMENTS, CHURN_READY, Cluster

PREDICT = "/v1/models/churn-classifier:predict"
INFER = "/v2/models/churn-classifier/infer"
BIG = 200_000

BAD = [
    (PREDICT, b'{"instances": [', 400),
    (PREDICT, b'{"instances": [{"age": 3}]}', 400),
    (PREDICT, b'{"instances": [[1, 2]]}', 400),
    (INFER, b'{"inputs": [{"name": "x", "shape": [2, 5], "datatype": "FP32", "data": [1]}]}', 400),
    (
        INFER,
        b'{"inputs": [{"name": "x", "shape": [1, 5], "datatype": "NOPE", "data": [1, 2, 3, 4, 5]}]}',
        400,
    ),
    (INFER, b'{"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP32"}]}', 400),
    ("/v1/models/other:predict", b'{"instances": [[1, 2, 3, 4, 5]]}', 404),
    ("/v1/models/other:explain", b'{"instances": [[1, 2, 3, 4, 5]]}', 404),
    ("/v2/models/churn-classifier/versions/9/infer", b'{"inputs": []}', 404),
]


def check_service(base: str, explainer: bool) -> None:
    with httpx.Client(base_url=base, timeout=60) as c:
        r = c.post(PREDICT, json={"instances": [ROW, [25, 2000, 20.0, 0, 1]]})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert preds[0]["risk_tier"] in {"HIGH", "MEDIUM", "LOW"}
        assert preds[0]["churn_probability"] > preds[1]["churn_probability"]

        body = {
            "id": "a1",
            "inputs": [{"name": "features", "shape": [1, 5], "datatype": "FP64", "data": list(ROW.values())}],
        }
        v2 = c.post(INFER, json=body)
        assert v2.status_code == 200, v2.text
        named = {o["name"]: o for o in v2.json()["outputs"]}
        assert v2.json()["id"] == "a1" and v2.json()["model_version"] == "1"
        assert named["churn_probability"]["data"][0] == pytest.approx(preds[0]["churn_probability"], abs=1e-4)

        meta = c.get("/v2/models/churn-classifier").json()
        assert meta["versions"] == ["1"]
        assert meta["inputs"] == [{"name": "features", "datatype": "FP64", "shape": [-1, 5]}]
        assert [(o["name"], o["datatype"], o["shape"]) for o in meta["outputs"]] == [
            ("churn_probability", "FP64", [-1]),
            ("risk_tier", "BYTES", [-1]),
        ]
        for o in meta["outputs"]:  # what the metadata says is what comes back, batch dimension included
            assert (named[o["name"]]["datatype"], named[o["name"]]["shape"]) == (o["datatype"], [1])
        assert c.get("/v2/models/churn-classifier/versions/1").status_code == 200
        assert c.get("/v2/models/churn-classifier/versions/2/ready").status_code == 404
        assert c.get("/v2/health/ready").status_code == 200
        models = ["churn-classifier"] + (["churn-classifier-explainer"] if explainer else [])
        assert c.get("/v1/models").json() == {"models": models}

        explain = (
            [("/v1/models/churn-classifier:explain", b'{"instances": [[1, 2, 3]]}', 400)]
            if explainer
            else [("/v1/models/churn-classifier:explain", b'{"instances": [[1, 2, 3, 4, 5]]}', 501)]
        )
        for path, raw, status in BAD + explain:
            bad = c.post(path, content=raw)
            assert bad.status_code == status, (path, raw, bad.text)
            assert "error" in bad.json()
            assert c.post(PREDICT, json={"instances": [ROW]}).status_code == 200

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as ac:
            rs = await asyncio.gather(*(ac.post(PREDICT, json={"instances": [ROW]}) for _ in range(64)))
            return [r.status_code for r in rs]

    assert asyncio.run(burst()) == [200] * 64


def check_tritonclient(port: int) -> None:
    """A typed V2 client: read the metadata, send what it lists, ask for every output it lists."""
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    meta = client.get_model_metadata("churn-classifier")
    (spec,) = meta["inputs"]
    x = np.array([list(ROW.values()), [25, 2000, 20.0, 0, 1]], dtype=np.float64)
    inp = triton.InferInput(spec["name"], list(x.shape), spec["datatype"])
    inp.set_data_from_numpy(x, binary_data=True)
    outs = [triton.InferRequestedOutput(o["name"], binary_data=True) for o in meta["outputs"]]
    result = client.infer("churn-classifier", [inp], outputs=outs, model_version=meta["versions"][0])
    probs = result.as_numpy("churn_probability")
    tiers = result.as_numpy("risk_tier")
    assert probs.shape == (2,) and probs[0] > probs[1]
    assert [t.decode() for t in tiers] == [
        "HIGH" if p > 0.7 else "MEDIUM" if p > 0.3 else "LOW" for p in probs
    ]
    client.close()


def check_explanations(base: str, port: int) -> None:
    """Anchors for every instance in the caller's fields; per-request parameters; V2 via tritonclient."""
    high = {"age": 30, "tenure_days": 20, "monthly_spend": 150.0, "support_tickets": 9, "last_login_days": 40}
    with httpx.Client(base_url=base, timeout=120) as c:
        r = c.post("/v1/models/churn-classifier:explain", json={"instances": [high, ROW, high]})
        assert r.status_code == 200, r.text
        explanations = r.json()["explanations"]
        assert len(explanations) == 3
        for e in explanations:
            assert e["meta"]["name"] == "AnchorTabular" and e["meta"]["params"]["threshold"] == 0.95
            assert e["data"]["anchor"] and all(
                clause.split()[0] in ROW or "<" in clause for clause in e["data"]["anchor"]
            )
            assert 0 < e["data"]["coverage"] <= 1 and e["data"]["precision"] > 0.5
        assert explanations[0]["data"] == explanations[2]["data"]  # same instance, same seed: same anchor
        loose = c.post(
            "/v1/models/churn-classifier:explain",
            json={"instances": [high], "parameters": {"threshold": 0.5}},
        )
        assert loose.status_code == 200, loose.text
        assert loose.json()["explanations"][0]["meta"]["params"]["threshold"] == 0.5
        assert loose.json()["explanations"][0]["data"] != explanations[0]["data"]

    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    meta = client.get_model_metadata("churn-classifier-explainer")
    (spec,) = meta["inputs"]
    x = np.array([list(high.values()), list(ROW.values())], dtype=np.float64)
    inp = triton.InferInput(spec["name"], list(x.shape), spec["datatype"])
    inp.set_data_from_numpy(x, binary_data=True)
    result = client.infer(
        "churn-classifier-explainer",
        [inp],
        outputs=[triton.InferRequestedOutput("explanation", binary_data=True)],
    )
    texts = result.as_numpy("explanation")
    assert texts.shape == (2,)
    assert json.loads(texts[0])["data"] == explanations[0]["data"]
    client.close()


def check_big_requests(base: str) -> None:
    """200,000 rows as V1 JSON (~5 MB) and as one V2 binary tensor (8 MB) cross the hop whole."""
    rows = np.tile(np.array([list(ROW.values()), [25, 2000, 20.0, 0, 1]]), (BIG // 2, 1))
    with httpx.Client(base_url=base, timeout=120) as c:
        r = c.post(PREDICT, content=json.dumps({"instances": rows.tolist()}))
        assert r.status_code == 200, r.text[:500]
        preds = r.json()["predictions"]
        assert len(preds) == BIG and preds[0]["churn_probability"] > preds[1]["churn_probability"]
        head = json.dumps({
            "inputs": [{"name": "features", "shape": list(rows.shape), "datatype": "FP64",
                        "parameters": {"binary_data_size": rows.nbytes}}],
            "parameters": {"binary_data_output": True},
        }).encode()  # fmt: skip
        rb = c.post(INFER, content=head + rows.astype("<f8").tobytes(), headers={HEADER: str(len(head))})
        assert rb.status_code == 200, rb.text[:500]
        n = int(rb.headers[HEADER])
        out = json.loads(rb.content[:n])["outputs"]
        assert out[0]["name"] == "churn_probability" and out[0]["shape"] == [BIG]
        probs = np.frombuffer(rb.content[n : n + BIG * 8], "<f8")
        assert probs[:2] == pytest.approx([p["churn_probability"] for p in preds[:2]], abs=1e-4)
        over = c.post(PREDICT, content=b"[" * (65 * 2**20))
        assert over.status_code == 413 and "isvc.dev/max-body-size" in over.json()["error"]
        assert c.post(PREDICT, json={"instances": [ROW]}).status_code == 200


# The collocated form first: the hop form's deployment (configs/churn.yaml) then stays up for
# the metrics test and test_1b (the TypeScript client), whose `serve deploy` of the same config
# changes nothing.
def test_collocated_form_with_serve_deploy(cluster: Cluster) -> None:
    cluster.deploy("churn-collocated.yaml", {"ingress"})
    check_service(cluster.base, explainer=False)
    check_big_requests(cluster.base)


def test_hop_form_with_serve_deploy(cluster: Cluster) -> None:
    cluster.deploy("churn.yaml", CHURN_DEPLOYMENTS, apps=CHURN_READY)
    status = cluster.cli("serve", "status")  # the README's command, in another shell
    assert status.returncode == 0, status.stderr
    app = yaml.safe_load(status.stdout)["applications"]["ml-serving-churn-classifier"]
    assert app["status"] == "RUNNING"
    check_service(cluster.base, explainer=True)
    check_tritonclient(cluster.http_port)
    check_explanations(cluster.base, cluster.http_port)
    check_big_requests(cluster.base)


def scrape(cluster: Cluster, wanted: list[str], timeout_s: float = 45) -> str:
    """Ray's metrics endpoint, once every ``wanted`` pattern matches (Ray exports every few seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = httpx.get(f"http://127.0.0.1:{cluster.metrics_port}/metrics", timeout=10).text
        missing = [w for w in wanted if not re.search(w, text, re.MULTILINE)]
        if not missing:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"not on Ray's metrics endpoint after {timeout_s}s: {missing}")
        time.sleep(2)


def test_metrics_on_rays_endpoint(cluster: Cluster) -> None:
    """KServe's stage histograms and isvc's request/row metrics, per model, on ``ray start
    --metrics-export-port`` (the hop form of the test above; deployed here when run alone)."""
    cluster.deploy("churn.yaml", CHURN_DEPLOYMENTS, apps=CHURN_READY)
    with httpx.Client(base_url=cluster.base, timeout=120) as c:
        for _ in range(3):
            assert c.post(PREDICT, json={"instances": [ROW, ROW]}).status_code == 200
        assert c.post(PREDICT, content=b'{"instances": [').status_code == 400
        explain = c.post("/v1/models/churn-classifier:explain", json={"instances": [ROW]})
        assert explain.status_code == 200, explain.text
    model = r'\{[^}]*model_name="churn-classifier"[^}]*\}'
    text = scrape(
        cluster,
        [
            *(
                rf"^ray_request_{stage}_seconds_bucket{model} "
                for stage in ("preprocess", "predict", "postprocess", "explain")
            ),
            r'^ray_isvc_requests_total\{(?=[^}]*model_name="churn-classifier")(?=[^}]*status="400")'
            r'(?=[^}]*endpoint="v1_predict")[^}]*\} ',
            rf"^ray_isvc_request_seconds_bucket{model} ",
            rf"^ray_isvc_coalesced_rows_bucket{model} ",
            rf"^ray_isvc_predictor_batch_rows_bucket{model} ",
        ],
    )
    counts = [
        float(line.rsplit("} ", 1)[1].split()[0])
        for line in text.splitlines()
        if re.match(rf"ray_request_predict_seconds_count{model} ", line)
    ]
    assert sum(counts) >= 3, counts
