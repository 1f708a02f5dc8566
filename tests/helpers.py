"""Helpers shared by test modules (no test module imports another)."""

from __future__ import annotations

from pathlib import Path

import httpx
import joblib
import numpy as np

from pipelines.dataplane import create_app, load_predictor, load_transformer
from pipelines.dataplane.explain import load_explainer
from pipelines.plan import PredictorNode, ServicePlan, TransformerNode
from pipelines.routing import LocalExplainerSink, LocalSink, assemble, served_models

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "tests" / "fixtures" / "specs"
ROW = {"age": 41, "tenure_days": 30, "monthly_spend": 120.5, "support_tickets": 6, "last_login_days": 21}
FEATURES = list(ROW)


def churn_plan(artifacts: Path, **fields: object) -> ServicePlan:
    """The churn service (transformer + sklearn predict_proba) over artifacts built by the tests."""
    return ServicePlan(
        name="churn-classifier",
        namespace="ml-serving",
        predictor=PredictorNode(
            runtime="sklearn", storage_uri=str(artifacts / "predictor"), args={"method": "predict_proba"}
        ),
        transformer=TransformerNode(
            class_path="transformers_.churn:ChurnTransformer", storage_uri=str(artifacts / "transformer")
        ),
        **fields,  # type: ignore[arg-type]
    )


async def make_client(
    plan: ServicePlan, max_inflight: int | None = None, **app_options: object
) -> httpx.AsyncClient:
    """An in-process client over the graph ``assemble`` wires for ``plan`` (local predictors, no Ray)."""
    transformer = await load_transformer(plan) if plan.transformer else None
    explainer = await local_explainer(plan) if plan.explainer else None
    pipe = await assemble(
        plan, lambda node: LocalSink(load_predictor(plan.name, node)), transformer, explainer
    )
    if pipe.explainer_model is not None:
        await pipe.explainer_model.explanations.ready_task
    app = create_app(served_models(pipe), max_inflight=max_inflight, **app_options)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://isvc")


async def local_explainer(plan: ServicePlan) -> LocalExplainerSink:
    """The explainer of ``plan`` in this process, built as its replica builds it (with a local model)."""
    return LocalExplainerSink(await load_explainer(plan))


def expected_prob(artifacts: Path, rows: list[list[float]]) -> np.ndarray:
    """What the churn model says for ``rows``, computed without isvc."""
    scaler = joblib.load(artifacts / "transformer" / "scaler.pkl")
    model = joblib.load(artifacts / "predictor" / "model.joblib")
    return model.predict_proba(scaler.transform(np.array(rows, dtype=float)))[:, 1]
