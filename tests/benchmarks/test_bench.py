"""The benchmark's bookkeeping: request bodies, row naming and the goal checks (no servers)."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.load import LoadResult, request_body_v2_binary
from benchmarks.run import Row, base_server, batch_load, ratios
from pipelines.protocol import InferRequest, decode_request


def load(c: int, req_s: float, p99: float, rows: int = 1, errors: int = 0) -> LoadResult:
    return LoadResult(c, rows, 10.0, int(req_s * 10), req_s, p99 / 2, p99, p99, p99, errors)


def test_binary_body_is_a_valid_binary_extension_request():
    body, headers = request_body_v2_binary(256)
    request = InferRequest.from_json(decode_request(body, headers["Inference-Header-Content-Length"]))
    x = request.as_numpy()
    assert x.shape == (256, 5) and x.dtype == np.float64
    assert x[0].tolist() == [41, 30, 120.5, 6, 21]
    assert request.wants_binary()


def test_batch_loads_name_their_protocol():
    url = "http://h:8000/v1/models/churn-classifier:predict"
    body, v1_url, headers = batch_load("v1", 2, url)
    assert v1_url == url and headers is None and len(json.loads(body)["instances"]) == 2
    _, v2, headers = batch_load("v2-binary", 2, url)
    assert v2 == "http://h:8000/v2/models/churn-classifier/infer"
    assert headers is not None and "Inference-Header-Content-Length" in headers
    assert base_server("ours:churn (V2 binary)") == base_server("ours:churn (V2)") == "ours:churn"


def test_ratios_judge_each_goal_and_use_the_floor_around_each_load():
    rows = [
        Row("kserve", "kserve", load(32, 200, 800)),
        Row("ours:a", "ours", load(32, 700, 100)),
        Row("ours:a", "ours", load(64, 650, 150, errors=0)),
        # 100k rows/s against a floor of 150k measured around the load: 67%
        Row("ours:a (V2 binary)", "ours", load(16, 100_000 / 256, 50, rows=256), floor_rows_s=150_000),
        # faster but with errors: not counted
        Row("ours:a (V2)", "ours", load(16, 200_000 / 256, 50, rows=256, errors=3), floor_rows_s=150_000),
        Row("ours:b", "ours", load(32, 500, 500)),
        Row("ours:b", "ours", load(64, 500, 500, errors=2)),
        Row("ours:b", "ours", load(16, 50_000 / 256, 50, rows=256), floor_rows_s=150_000),
    ]
    checks = {(c["server"], c["metric"]): c for c in ratios(rows, 400_000, 256)}
    a = {m: c for (s, m), c in checks.items() if s == "ours:a"}
    assert a["req/s ours/KServe @c=32"]["value"] == 3.5 and a["req/s ours/KServe @c=32"]["pass"]
    assert a["p99 ours/KServe @c=32"]["value"] == 0.125 and a["p99 ours/KServe @c=32"]["pass"]
    assert a["errors @c=64"]["pass"]
    assert round(a["256-row rows/s % adjacent floor"]["value"]) == 67
    assert a["256-row rows/s % adjacent floor"]["pass"]
    assert a["256-row rows/s % run-start floor"]["value"] == 25.0
    assert a["256-row rows/s % run-start floor"]["pass"] is False
    b = {m: c for (s, m), c in checks.items() if s == "ours:b"}
    assert b["req/s ours/KServe @c=32"]["pass"] is False  # 2.5x
    assert b["p99 ours/KServe @c=32"]["pass"] is False  # 0.625
    assert b["errors @c=64"]["pass"] is False
    assert b["256-row rows/s % adjacent floor"]["pass"] is False  # 33%


def test_explain_benchmark_judges_its_goals():
    from benchmarks.explain import render

    r = {"floor_ms": 60.0, "served_ms": 80.0, "http_baseline_ms": 200.0, "served_vs_floor": 80 / 60,
         "http_vs_served": 2.5, "model_calls": 26, "explanations_per_s_16": 9.0,
         "path_ms": 3.0, "path_vs_floor": 0.05}  # fmt: skip
    slow = {**r, "served_vs_floor": 1.6, "http_vs_served": 1.5, "path_vs_floor": 0.55}
    predict = {"alone_p99_ms": 40.0, "alone_req_s": 300, "explaining_p99_ms": 70.0, "explaining_req_s": 250,
               "errors": 0, "explanations_done": 20, "p99_ratio": 1.75}  # fmt: skip
    text = render({"anchor": {**r, "predict": predict}, "shap": slow})
    anchor_line, shap_line = (
        line for line in text.splitlines() if line.startswith("| A") or line.startswith("| K")
    )
    assert "1.33× PASS" in anchor_line and "2.50× PASS" in anchor_line
    assert "1.60× FAIL" in shap_line and "1.50× FAIL" in shap_line
    assert "| 3.0 ms | 0.05× |" in anchor_line and "| 0.55× |" in shap_line  # the path alone, (e)
    assert "1.75× (goal ≤ 1.5×) FAIL" in text
