"""Explanations on a real Ray cluster over HTTP, for a model with a known rule (churn = tickets > 5)
behind the churn transformer: two applications in one ``serve deploy``, one with an Anchor
explainer (its own model copy) and one with KernelShap (calling the predictor deployment)."""

from __future__ import annotations

import copy
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from tests.helpers import FEATURES
from tests.integration.cluster import Cluster

TIMEOUT_S = 5


def build_rule(folder: Path) -> tuple[StandardScaler, DecisionTreeClassifier]:
    """Artifacts for label = support_tickets > 5: scaler, tree on scaled columns, background rows."""
    rng = np.random.default_rng(11)
    n = 1200
    x = np.column_stack([
        rng.integers(18, 80, n), rng.integers(1, 3000, n), rng.uniform(5, 200, n),
        rng.integers(0, 11, n), rng.integers(0, 60, n),
    ]).astype(np.float64)  # fmt: skip
    y = (x[:, 3] > 5).astype(int)
    scaler = StandardScaler().fit(x)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(scaler.transform(x), y)
    for part in ("transformer", "predictor", "explainer"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    joblib.dump(scaler, folder / "transformer" / "scaler.pkl")
    joblib.dump(tree, folder / "predictor" / "model.joblib")
    pd.DataFrame(x[:400], columns=FEATURES).to_csv(folder / "explainer" / "background.csv", index=False)
    return scaler, tree


def isvc(name: str, explainer: dict, annotations: dict | None = None) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "rules", "annotations": annotations or {}},
        "spec": {
            "transformer": {
                "custom": {
                    "class": "transformers_.churn:ChurnTransformer",
                    "storageUri": "artifacts/rule/transformer",
                }
            },
            "predictor": {
                "sklearn": {"storageUri": "artifacts/rule/predictor", "args": ["--method=predict_proba"]}
            },
            "explainer": {"timeout": TIMEOUT_S, **explainer},
        },
    }


def app(name: str, prefix: str, explainer: dict, annotations: dict | None = None) -> dict:
    return {
        "name": f"rules-{name}",
        "route_prefix": prefix,
        "import_path": "pipelines.app:build",
        "args": isvc(name, explainer, annotations),
    }


HIGH = {"age": 40, "tenure_days": 900, "monthly_spend": 80.0, "support_tickets": 8, "last_login_days": 10}
LOW = {"age": 40, "tenure_days": 900, "monthly_spend": 80.0, "support_tickets": 1, "last_login_days": 10}


@pytest.fixture(scope="module")
def rules(cluster: Cluster) -> tuple[StandardScaler, DecisionTreeClassifier]:
    scaler, tree = build_rule(cluster.cwd / "artifacts" / "rule")
    anchor = {"alibi": {"type": "AnchorTabular", "storageUri": "artifacts/rule/explainer",
                        "config": {"threshold": "0.95", "seed": "1"}}}  # fmt: skip
    shap = {"shap": {"type": "KernelShap", "storageUri": "artifacts/rule/explainer",
                     "config": {"nsamples": 100, "background_size": 30}}}  # fmt: skip
    config = {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": cluster.http_port},
        # Anchor calls its own copy of the model (the default for a CPU predictor); SHAP calls the
        # predictor deployment's handle with each sampling batch.
        "applications": [
            app("anchor", "/", anchor),
            app("shap", "/shap", shap, {"isvc.dev/explainer-model": "deployment"}),
        ],
    }
    ready = {
        "rules-anchor": "/v2/models/anchor-explainer/ready",
        "rules-shap": "/shap/v2/models/shap-explainer/ready",
    }
    cluster.deploy(copy.deepcopy(config), {"ingress", "predictor", "explainer"}, timeout_s=300, apps=ready)
    return scaler, tree


def test_the_anchor_names_the_rule_in_the_request_fields(cluster: Cluster, rules) -> None:
    with httpx.Client(base_url=cluster.base, timeout=60) as c:
        r = c.post("/v1/models/anchor:explain", json={"instances": [HIGH, LOW, HIGH]})
        assert r.status_code == 200, r.text
        high, low, again = r.json()["explanations"]
        assert high["data"]["anchor"] == ["support_tickets > 5.00"]  # raw tickets, not a scaled column
        assert high["data"]["precision"] >= 0.95 and high["data"]["raw"]["prediction"] == [1]
        assert low["data"]["raw"]["prediction"] == [0]
        assert low["data"]["anchor"] == ["support_tickets <= 5.00"]
        assert again["data"] == high["data"]


def test_parameters_change_the_result_per_request(cluster: Cluster, rules) -> None:
    with httpx.Client(base_url=cluster.base, timeout=60) as c:
        url = "/v1/models/anchor:explain"
        base = c.post(url, json={"instances": [HIGH]}).json()["explanations"][0]
        fewer = c.post(url, json={"instances": [HIGH], "parameters": {"coverage_samples": 50}})
        assert fewer.status_code == 200, fewer.text
        e = fewer.json()["explanations"][0]
        assert (
            e["meta"]["params"]["coverage_samples"] == 50
            and base["meta"]["params"]["coverage_samples"] == 10000
        )
        assert e["data"]["coverage"] != base["data"]["coverage"]  # estimated on 50 samples, not 10,000
        bad = c.post(url, json={"instances": [HIGH], "parameters": {"max_anchor_sise": 2}})
        assert bad.status_code == 400 and "did you mean 'max_anchor_size'" in bad.json()["error"]


def test_past_the_timeout_is_504_and_the_next_request_succeeds(cluster: Cluster, rules) -> None:
    # An unreachable precision with a tiny tau: the search runs for minutes (small batches, small caches).
    slow = {"threshold": 1.0, "delta": 1e-12, "tau": 0.001, "min_samples_start": 5000, "batch_size": 1000,
            "binary_cache_size": 100, "coverage_samples": 1000, "beam_size": 20}  # fmt: skip
    with httpx.Client(base_url=cluster.base, timeout=60) as c:
        r = c.post("/v1/models/anchor:explain", json={"instances": [LOW], "parameters": slow})
        assert r.status_code == 504, r.text
        assert f"timeout of {TIMEOUT_S}s" in r.json()["error"]
        assert c.post("/v1/models/anchor:predict", json={"instances": [HIGH]}).status_code == 200
        ok = c.post("/v1/models/anchor:explain", json={"instances": [HIGH]})
        assert ok.status_code == 200 and ok.json()["explanations"][0]["data"]["anchor"] == [
            "support_tickets > 5.00"
        ]


def test_kernel_shap_values_add_up_to_the_model_output(cluster: Cluster, rules) -> None:
    scaler, tree = rules
    with httpx.Client(base_url=f"{cluster.base}/shap", timeout=60) as c:
        r = c.post("/v1/models/shap:explain", json={"instances": [HIGH, LOW]})
        assert r.status_code == 200, r.text
        explanations = r.json()["explanations"]
    assert len(explanations) == 2
    for inst, e in zip((HIGH, LOW), explanations, strict=True):
        row = np.array([[inst[f] for f in FEATURES]], dtype=np.float64)
        proba = tree.predict_proba(scaler.transform(row))[0]
        sv = np.asarray(e["shap_values"])
        assert e["feature_names"] == FEATURES and sv.shape == (5, 2)
        # Kernel SHAP's values add up exactly (its sum constraint); the sampling error is only
        # in how the total is shared among the features.
        np.testing.assert_allclose(np.asarray(e["expected_value"]) + sv.sum(axis=0), proba, atol=1e-6)
        assert int(np.abs(sv[:, 1]).argmax()) == FEATURES.index("support_tickets")
