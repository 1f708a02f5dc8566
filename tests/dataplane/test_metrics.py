"""The data plane's measurements with a fake recorder (no Ray): stages per model, requests by
endpoint and status, explanations, rows per coalesced predictor call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.batching import Coalescer
from pipelines.dataplane import create_app, load_predictor, load_transformer
from pipelines.dataplane.metrics import NoRecorder, recorder, set_recorder
from pipelines.plan import ExplainerNode
from pipelines.routing import LocalSink, assemble, served_models
from tests.helpers import FEATURES, ROW, churn_plan, make_client

MODEL = "churn-classifier"


class FakeRecorder:
    def __init__(self) -> None:
        self.stages: list[tuple[str, str, float]] = []
        self.requests: list[tuple[str, str, int, float]] = []
        self.row_counts: list[tuple[str, str, int]] = []

    def observe(self, stage: str, model: str, seconds: float) -> None:
        self.stages.append((stage, model, seconds))

    def count(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.append((model, endpoint, status, seconds))

    def rows(self, kind: str, model: str, n: int) -> None:
        self.row_counts.append((kind, model, n))

    def stage_names(self, model: str = MODEL) -> list[str]:
        return [s for s, m, _ in self.stages if m == model]

    def statuses(self) -> list[tuple[str, str, int]]:
        return [(m, e, s) for m, e, s, _ in self.requests]


@pytest.fixture
def rec() -> Iterator[FakeRecorder]:
    fake = FakeRecorder()
    previous = set_recorder(fake)
    try:
        yield fake
    finally:
        set_recorder(previous)


@pytest.fixture
async def client(churn_artifacts: Path):
    async with await make_client(churn_plan(churn_artifacts)) as c:
        yield c


def test_the_default_records_nothing() -> None:
    assert isinstance(recorder(), NoRecorder)
    previous = set_recorder(None)
    assert isinstance(recorder(), NoRecorder)
    set_recorder(previous)


async def test_a_v1_predict_records_its_stages_for_that_model(client, rec: FakeRecorder) -> None:
    r = await client.post(f"/v1/models/{MODEL}:predict", json={"instances": [ROW, ROW]})
    assert r.status_code == 200, r.text
    assert rec.stage_names() == ["preprocess", "predict", "postprocess"]
    assert all(0 <= seconds < 10 for _, _, seconds in rec.stages)
    assert rec.statuses() == [(MODEL, "v1_predict", 200)]
    assert rec.requests[0][3] >= sum(seconds for _, _, seconds in rec.stages)
    assert rec.row_counts == [("coalesced", MODEL, 2)]


async def test_a_v2_infer_records_its_stages(client, rec: FakeRecorder) -> None:
    body = {"inputs": [{"name": "features", "shape": [1, 5], "datatype": "FP64", "data": list(ROW.values())}]}
    r = await client.post(f"/v2/models/{MODEL}/infer", json=body)
    assert r.status_code == 200, r.text
    assert rec.stage_names() == ["preprocess", "predict", "postprocess"]
    assert rec.statuses() == [(MODEL, "v2_infer", 200)]


async def test_errors_are_counted_by_status(client, rec: FakeRecorder) -> None:
    assert (await client.post(f"/v1/models/{MODEL}:predict", content=b'{"instances": [')).status_code == 400
    assert (await client.post("/v1/models/nope:predict", json={"instances": [ROW]})).status_code == 404
    assert (await client.post(f"/v1/models/{MODEL}:explain", json={"instances": [ROW]})).status_code == 501
    assert (await client.get("/v2/health/ready")).status_code == 200
    assert rec.statuses() == [
        (MODEL, "v1_predict", 400),
        ("", "v1_predict", 404),  # a name that is not served is no label value
        (MODEL, "v1_explain", 501),
        ("", "v2_ready", 200),
    ]
    assert rec.stages == []  # no stage succeeded


async def test_a_failing_stage_is_not_observed(client, rec: FakeRecorder) -> None:
    r = await client.post(f"/v1/models/{MODEL}:predict", json={"instances": [[1, 2]]})
    assert r.status_code == 400, r.text
    assert "predict" not in rec.stage_names() and "postprocess" not in rec.stage_names()
    assert rec.statuses() == [(MODEL, "v1_predict", 400)]


class FakeExplainer:
    """An explainer sink that answers at once."""

    async def explain(self, rows: Any, parameters: Any, as_objects: bool, timeout_s: Any) -> list[Any]:
        return [{"meta": {"name": "AnchorTabular"}, "data": {"row": np.asarray(rows).tolist()}}]

    async def info(self) -> dict[str, Any]:
        return {"type": "AnchorTabular", "feature_names": FEATURES}


async def test_explain_records_explain(churn_artifacts: Path, rec: FakeRecorder) -> None:
    import httpx

    node = ExplainerNode(kind="alibi", type="AnchorTabular", storage_uri=str(churn_artifacts / "explainer"))
    plan = churn_plan(churn_artifacts, explainer=node)
    pipe = await assemble(
        plan,
        lambda n: LocalSink(load_predictor(plan.name, n)),
        await load_transformer(plan),
        FakeExplainer(),
    )
    assert pipe.explainer_model is not None
    await pipe.explainer_model.explanations.ready_task
    app = create_app(served_models(pipe))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post(f"/v1/models/{MODEL}:explain", json={"instances": [ROW, ROW]})
        assert r.status_code == 200, r.text
        body = {"inputs": [{"name": "f", "shape": [1, 5], "datatype": "FP64", "data": list(ROW.values())}]}
        r = await c.post(f"/v2/models/{MODEL}-explainer/infer", json=body)
        assert r.status_code == 200, r.text
    assert rec.stage_names() == ["explain", "explain"]  # under the model's name, both routes
    assert rec.statuses() == [(MODEL, "v1_explain", 200), (f"{MODEL}-explainer", "v2_infer", 200)]


async def test_coalesced_rows_are_recorded_per_predictor_call(rec: FakeRecorder) -> None:
    calls: list[int] = []

    async def sink(batch: Any) -> Any:
        calls.append(len(batch))
        await asyncio.sleep(0.005)
        return np.asarray(batch) * 2

    c = Coalescer(sink, window_s=0.002, max_inflight=1, name="m")
    await asyncio.gather(*(c.submit(np.full((2, 3), i, dtype=float)) for i in range(20)))
    assert len(calls) < 20
    assert rec.row_counts == [("coalesced", "m", n) for n in calls]
    assert sum(n for _, _, n in rec.row_counts) == 40
