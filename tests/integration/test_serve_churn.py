"""``serve run configs/churn*.yaml`` on a real Ray cluster; V1 and V2 over real HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipelines.protocol import HEADER
from tests.integration.conftest import ROOT, serve_run

ROW = {"age": 41, "tenure_days": 30, "monthly_spend": 120.5, "support_tickets": 6, "last_login_days": 21}
PREDICT = "/v1/models/churn-classifier:predict"
INFER = "/v2/models/churn-classifier/infer"

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
]


def check_service(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post(PREDICT, json={"instances": [ROW, [25, 2000, 20.0, 0, 1]]})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert preds[0]["risk_tier"] in {"HIGH", "MEDIUM", "LOW"}
        assert preds[0]["churn_probability"] > preds[1]["churn_probability"]

        body = {
            "id": "a1",
            "inputs": [{"name": "f", "shape": [1, 5], "datatype": "FP64", "data": list(ROW.values())}],
        }
        v2 = c.post(INFER, json=body)
        assert v2.status_code == 200, v2.text
        named = {o["name"]: o for o in v2.json()["outputs"]}
        assert v2.json()["id"] == "a1"
        assert named["churn_probability"]["data"][0] == pytest.approx(preds[0]["churn_probability"], abs=1e-4)

        # V2 binary tensor data extension through the proxy: raw FP64 in, raw outputs back.
        x = np.array([list(ROW.values())] * 256, dtype="<f8")
        head = json.dumps({
            "inputs": [{"name": "f", "shape": [256, 5], "datatype": "FP64",
                        "parameters": {"binary_data_size": x.nbytes}}],
            "parameters": {"binary_data_output": True},
        }).encode()  # fmt: skip
        rb = c.post(INFER, content=head + x.tobytes(), headers={HEADER: str(len(head))})
        assert rb.status_code == 200, rb.text
        n = int(rb.headers[HEADER])
        probs = np.frombuffer(rb.content[n : n + 256 * 8], "<f8")
        assert probs == pytest.approx([named["churn_probability"]["data"][0]] * 256)

        meta = c.get("/v2/models/churn-classifier").json()
        assert meta["inputs"][0]["shape"] == [-1, 5]
        assert c.get("/v2/health/ready").status_code == 200
        assert c.get("/v1/models").json() == {"models": ["churn-classifier"]}

        for path, raw, status in BAD:
            bad = c.post(path, content=raw)
            assert bad.status_code == status, (path, raw, bad.text)
            assert "error" in bad.json()
            assert c.post(PREDICT, json={"instances": [ROW]}).status_code == 200

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as ac:
            rs = await asyncio.gather(*(ac.post(PREDICT, json={"instances": [ROW]}) for _ in range(64)))
            return [r.status_code for r in rs]

    assert asyncio.run(burst()) == [200] * 64


def test_churn_hop_amortized_with_haproxy(served_dir: Path) -> None:
    with serve_run(ROOT / "configs" / "churn.yaml", served_dir, ha_proxy=True) as base:
        check_service(base)


def test_churn_collocated_with_default_proxy(served_dir: Path) -> None:
    with serve_run(ROOT / "configs" / "churn-collocated.yaml", served_dir, ha_proxy=False) as base:
        check_service(base)
