"""A categorical feature explained in the caller's own values, in this process (no Ray): a
transformer one-hot encodes ``plan`` ("basic" / "plus" / "premium"); the model's rule is
churn = plan is "basic" and more than 5 tickets. The background CSV holds the strings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from pipelines.plan import ExplainerNode, PredictorNode, ServicePlan, TransformerNode
from tests.helpers import make_client
from transformers_.base import Transformer

PLANS = ["basic", "plus", "premium"]


class PlanTransformer(Transformer):
    """``{"tickets": 8, "plan": "basic"}`` → ``[tickets, basic?, plus?, premium?]``."""

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        rows = []
        for inst in payload["instances"]:
            tickets, plan = (inst["tickets"], inst["plan"]) if isinstance(inst, dict) else inst
            rows.append([float(tickets), *(float(plan == p) for p in PLANS)])
        return np.asarray(rows)


def churns(tickets: np.ndarray, basic: np.ndarray) -> np.ndarray:
    return ((tickets > 5) & (basic == 1)).astype(int)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plans")
    rng = np.random.default_rng(5)
    tickets = rng.integers(0, 11, 800)
    plan = rng.choice(PLANS, 800)
    onehot = np.column_stack([plan == p for p in PLANS]).astype(float)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(
        np.column_stack([tickets, onehot]), churns(tickets, onehot[:, 0])
    )
    (root / "predictor").mkdir()
    joblib.dump(model, root / "predictor" / "model.joblib")
    (root / "explainer").mkdir()
    lines = ["tickets,plan", *(f"{t},{p}" for t, p in zip(tickets[:400], plan[:400], strict=True))]
    (root / "explainer" / "background.csv").write_text("\n".join(lines) + "\n")
    return root


def plan_of(root: Path, kind: str, type_: str, **config: object) -> ServicePlan:
    return ServicePlan(
        name="plans",
        namespace="default",
        predictor=PredictorNode(runtime="sklearn", storage_uri=str(root / "predictor")),
        transformer=TransformerNode(class_path=f"{__name__}:PlanTransformer"),
        explainer=ExplainerNode(kind=kind, type=type_, storage_uri=str(root / "explainer"), config=config),
    )


async def test_the_anchor_names_the_category_the_caller_sent(service: Path) -> None:
    plan = plan_of(service, "alibi", "AnchorTabular", seed=1, threshold=0.95)
    async with await make_client(plan) as client:
        body = {"instances": [{"tickets": 9, "plan": "basic"}, {"tickets": 9, "plan": "premium"}]}
        r = await client.post("/v1/models/plans:explain", json=body)
        assert r.status_code == 200, r.text
        churned, stayed = r.json()["explanations"]
        assert churned["data"]["raw"]["prediction"] == [1] and stayed["data"]["raw"]["prediction"] == [0]
        assert "plan = basic" in churned["data"]["anchor"], churned["data"]["anchor"]
        assert churned["data"]["precision"] >= 0.95
        assert "plan = premium" in stayed["data"]["anchor"], stayed["data"]["anchor"]
        # lists work too; an unknown category is a 400 naming the instance, the feature and the values
        bad = await client.post("/v1/models/plans:explain", json={"instances": [[9, "basic"], [9, "gold"]]})
        assert bad.status_code == 400
        message = "instances[1].plan: 'gold' is not one of its values (basic, plus, premium)"
        assert message in bad.json()["error"]


async def test_kernel_shap_values_add_up_over_a_categorical_feature(service: Path) -> None:
    plan = plan_of(service, "shap", "KernelShap", nsamples=50, background_size=30)
    async with await make_client(plan) as client:
        body = {"instances": [{"tickets": 9, "plan": "basic"}]}
        r = await client.post("/v1/models/plans:explain", json=body)
        assert r.status_code == 200, r.text
        (e,) = r.json()["explanations"]
        values = np.asarray(e["shap_values"])  # [features][outputs]
        assert e["feature_names"] == ["tickets", "plan"]
        added = np.asarray(e["expected_value"]) + values.sum(axis=0)
        np.testing.assert_allclose(added, e["output"], atol=1e-6)
        assert e["output"] == [1.0]  # the model's own answer for a basic customer with 9 tickets
        assert values[1][0] > 0  # being on the basic plan pushed it towards churn
        v2 = {
            "inputs": [
                {"name": "tickets", "datatype": "FP64", "shape": [1], "data": [9]},
                {"name": "plan", "datatype": "BYTES", "shape": [1], "data": ["basic"]},
            ]
        }
        r2 = await client.post("/v2/models/plans-explainer/infer", json=v2)
        assert r2.status_code == 200, r2.text
        assert json.loads(r2.json()["outputs"][0]["data"][0])["shap_values"] == e["shap_values"]
