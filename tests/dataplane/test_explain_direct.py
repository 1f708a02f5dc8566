"""An explainer replica that answers ``:explain`` over HTTP itself (its own application on
``/v1/models/{name}:explain``), here without Ray: the ASGI app a replica builds, as Ray's proxy
calls it, over the real churn explainer."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from pipelines._ray.deployments import at_route
from pipelines.dataplane import create_app
from pipelines.dataplane.explain import load_explainer
from pipelines.plan import Scaling
from pipelines.routing import LocalFirstExplainerSink, explainer_front
from tests.dataplane.test_explain import HIGH, LOW, anchor_plan, shap_plan
from tests.helpers import FEATURES, expected_prob

ROUTE = "/v1/models/churn-classifier:explain"


async def front(plan: Any, prefix: str = ROUTE, others: Any = None) -> httpx.AsyncClient:
    runner = await load_explainer(plan)
    app = create_app(explainer_front(plan, runner, others), max_body_bytes=plan.max_body_bytes)
    routed = at_route(app, ROUTE)

    async def as_serve_calls_it(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Ray's proxy gives the application's route prefix as root_path and the full path.
        if scope["type"] == "http":
            scope = {**scope, "root_path": prefix}
        await routed(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=as_serve_calls_it), base_url="http://isvc")


async def test_the_replica_answers_explain_at_its_route(churn_artifacts: Path) -> None:
    async with await front(shap_plan(churn_artifacts)) as c:
        r = await c.post(ROUTE, json={"instances": [HIGH, LOW]})
        assert r.status_code == 200, r.text
        explanations = r.json()["explanations"]
    assert len(explanations) == 2
    for inst, e in zip((HIGH, LOW), explanations, strict=True):
        assert e["feature_names"] == FEATURES
        total = np.asarray(e["expected_value"]) + np.asarray(e["shap_values"]).sum(axis=0)
        row = [[inst[f] for f in FEATURES]]
        np.testing.assert_allclose(total[1], expected_prob(churn_artifacts, row)[0], atol=1e-6)


async def test_under_a_service_prefix_too(churn_artifacts: Path) -> None:
    prefixed = "/ns/churn" + ROUTE
    async with await front(shap_plan(churn_artifacts), prefix=prefixed) as c:
        r = await c.post(prefixed, json={"instances": [HIGH]})
        assert r.status_code == 200, r.text
        assert len(r.json()["explanations"]) == 1
        deeper = await c.post(prefixed + "/more", json={"instances": [HIGH]})
        assert deeper.status_code == 404 and "error" in deeper.json()


async def test_errors_are_the_ingress_errors_and_it_keeps_serving(churn_artifacts: Path) -> None:
    async with await front(shap_plan(churn_artifacts)) as c:
        short = await c.post(ROUTE, json={"instances": [HIGH, [1, 2]]})
        assert short.status_code == 400
        assert short.json()["error"].startswith("instances[1]: mix of objects and lists")
        assert (await c.post(ROUTE, content=b'{"instances": [')).status_code == 400
        bad = await c.post(ROUTE, json={"instances": [HIGH], "parameters": {"nsample": 10}})
        assert bad.status_code == 400 and "did you mean 'nsamples'" in bad.json()["error"]
        wrong = await c.get(ROUTE)
        assert wrong.status_code in (404, 405) and "error" in wrong.json()  # as the ingress answers it
        assert (await c.post(ROUTE, json={"instances": [HIGH]})).status_code == 200


async def test_past_the_explainer_timeout_is_504(churn_artifacts: Path) -> None:
    plan = anchor_plan(churn_artifacts)
    assert plan.explainer is not None
    plan = replace(plan, explainer=replace(plan.explainer, scaling=Scaling(timeout_s=1.0)))
    slow = {"threshold": 1.0, "delta": 1e-12, "tau": 0.001, "min_samples_start": 5000, "batch_size": 1000,
            "binary_cache_size": 100, "coverage_samples": 1000, "beam_size": 20}  # fmt: skip
    async with await front(plan) as c:
        r = await c.post(ROUTE, json={"instances": [LOW], "parameters": slow})
        assert r.status_code == 504 and "timeout of 1s" in r.json()["error"]
        ok = await c.post(ROUTE, json={"instances": [HIGH]})
        assert ok.status_code == 200 and ok.json()["explanations"][0]["data"]["anchor"]


class Runner:
    """A stand-in ExplainRunner that records how many explanations overlap."""

    def __init__(self, name: str) -> None:
        self.name, self.running, self.most, self.rows = name, 0, 0, 0

    async def explain(
        self, rows: Any, parameters: Any, as_objects: bool, timeout_s: Any
    ) -> list[dict[str, Any]]:
        self.running += 1
        self.most = max(self.most, self.running)
        self.rows += len(rows)
        await asyncio.sleep(0.02)
        self.running -= 1
        return [{"by": self.name}]

    def info(self) -> dict[str, Any]:
        return {"feature_names": FEATURES}


async def test_local_first_then_the_other_replicas() -> None:
    here, there = Runner("here"), Runner("there")
    made: list[int] = []

    def others() -> Any:
        made.append(1)
        return LocalFirstExplainerSink(there)

    sink = LocalFirstExplainerSink(here, others)
    rows = np.zeros((1, 5))
    alone = await sink.explain(rows, {}, False, None)
    assert alone == [{"by": "here"}] and made == []  # one instance: this replica, no handle made
    four = await asyncio.gather(*(sink.explain(rows, {}, False, None) for _ in range(4)))
    assert [r[0]["by"] for r in four] == ["here", "there", "there", "there"]
    assert here.most == 1 and made == [1]  # the handle is made once, when first needed


async def test_with_one_replica_everything_queues_here() -> None:
    here = Runner("here")
    sink = LocalFirstExplainerSink(here, None)
    out = await asyncio.gather(*(sink.explain(np.zeros((1, 5)), {}, False, None) for _ in range(3)))
    assert [r[0]["by"] for r in out] == ["here"] * 3 and here.rows == 3


@pytest.mark.parametrize("path", [ROUTE, "/"])
async def test_at_route_maps_the_root_to_the_route(path: str) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["path"])

    await at_route(app, ROUTE)({"type": "http", "root_path": ROUTE, "path": path}, None, None)
    await at_route(app, ROUTE)({"type": "http", "root_path": "", "path": path}, None, None)
    assert seen == [ROUTE, ROUTE]
