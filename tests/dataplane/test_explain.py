"""``:explain`` and ``{name}-explainer`` over the real churn graph in this process (no Ray):
alibi and shap explain preprocess ∘ predictor in the caller's own features."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipelines.plan import ExplainerNode, Scaling
from tests.helpers import FEATURES, ROW, churn_plan, expected_prob, make_client

HIGH = {"age": 30, "tenure_days": 20, "monthly_spend": 150.0, "support_tickets": 9, "last_login_days": 40}
LOW = {"age": 60, "tenure_days": 2800, "monthly_spend": 40.0, "support_tickets": 0, "last_login_days": 1}


def anchor_plan(artifacts: Path, **config: object):
    node = ExplainerNode(
        kind="alibi",
        type="AnchorTabular",
        storage_uri=str(artifacts / "explainer"),
        config={"seed": 1, **config},
    )
    return churn_plan(artifacts, explainer=node)


def shap_plan(artifacts: Path):
    node = ExplainerNode(
        kind="shap",
        type="KernelShap",
        storage_uri=str(artifacts / "explainer"),
        config={"nsamples": 100, "background_size": 20},
    )
    return churn_plan(artifacts, explainer=node)


_CLAUSE = re.compile(r"^(?:([\d.]+) < )?(\w+) (?:<=|>|<|>=) ([\d.-]+)$")


async def test_every_instance_gets_an_anchor_in_the_request_fields(churn_artifacts: Path) -> None:
    async with await make_client(anchor_plan(churn_artifacts)) as client:
        r = await client.post("/v1/models/churn-classifier:explain", json={"instances": [HIGH, LOW, ROW]})
        assert r.status_code == 200, r.text
        explanations = r.json()["explanations"]
        assert len(explanations) == 3
        for e in explanations:
            assert set(e) == {"meta", "data"} and e["meta"]["name"] == "AnchorTabular"
            assert {"anchor", "precision", "coverage", "raw"} <= set(e["data"])
            for clause in e["data"]["anchor"]:
                m = _CLAUSE.match(clause)
                assert m and m.group(2) in FEATURES, clause
        high = explanations[0]["data"]
        assert high["raw"]["prediction"] == [1] and explanations[1]["data"]["raw"]["prediction"] == [0]
        assert high["precision"] >= 0.9
        # thresholds in the caller's units (days, tickets), not standardised columns near 0
        values = [float(_CLAUSE.match(c).group(3)) for c in high["anchor"]]  # type: ignore[union-attr]
        assert max(abs(v) for v in values) > 3
        assert high["raw"]["instance"] == [float(HIGH[f]) for f in FEATURES]


async def test_parameters_override_config_per_request_and_are_checked(churn_artifacts: Path) -> None:
    async with await make_client(anchor_plan(churn_artifacts)) as client:
        url = "/v1/models/churn-classifier:explain"
        strict = (await client.post(url, json={"instances": [ROW]})).json()["explanations"][0]
        loose = (await client.post(url, json={"instances": [ROW], "parameters": {"threshold": 0.5}})).json()
        loose = loose["explanations"][0]
        assert strict["meta"]["params"]["threshold"] == 0.95 and loose["meta"]["params"]["threshold"] == 0.5
        assert len(loose["data"]["anchor"]) <= len(strict["data"]["anchor"])
        assert loose["data"]["precision"] < strict["data"]["precision"] or loose["data"] != strict["data"]
        r = await client.post(url, json={"instances": [ROW], "parameters": {"treshold": 0.5}})
        assert r.status_code == 400
        assert (
            "parameters.treshold: unknown AnchorTabular setting; did you mean 'threshold'"
            in r.json()["error"]
        )


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([{"age": 1}], "instances[0] is missing tenure_days"),
        ([ROW, [1, 2, 3]], "instances[1]: mix of objects and lists"),
        ([[1, 2, 3]], "instances[0] has 3 values, expected 5"),
        ([{**ROW, "age": "old"}], "instances[0].age: every explained feature must be a number"),
        ([], '"instances" is empty'),
    ],
)
async def test_bad_instances_are_400_naming_the_instance(churn_artifacts: Path, instances, message) -> None:
    async with await make_client(anchor_plan(churn_artifacts)) as client:
        r = await client.post("/v1/models/churn-classifier:explain", json={"instances": instances})
        assert r.status_code == 400 and message in r.json()["error"]
        ok = await client.post(
            "/v1/models/churn-classifier:explain", json={"instances": [[41, 30, 120.5, 6, 21]]}
        )
        assert ok.status_code == 200 and len(ok.json()["explanations"]) == 1


async def test_kernel_shap_values_add_up_to_the_churn_probability(churn_artifacts: Path) -> None:
    async with await make_client(shap_plan(churn_artifacts)) as client:
        r = await client.post("/v1/models/churn-classifier:explain", json={"instances": [HIGH, LOW]})
        assert r.status_code == 200, r.text
        rows = [[float(x[f]) for f in FEATURES] for x in (HIGH, LOW)]
        prob = expected_prob(churn_artifacts, rows)
        for e, p in zip(r.json()["explanations"], prob, strict=True):
            sv = np.asarray(e["shap_values"])
            assert sv.shape == (5, 2) and e["feature_names"] == FEATURES and e["link"] == "identity"
            np.testing.assert_allclose(
                np.asarray(e["expected_value"]) + sv.sum(axis=0), e["output"], atol=1e-9
            )
            np.testing.assert_allclose(
                e["output"][1], p, atol=1e-6
            )  # the model output, through the transformer


async def test_the_explainer_is_a_v2_model_with_metadata(churn_artifacts: Path) -> None:
    async with await make_client(anchor_plan(churn_artifacts)) as client:
        models = (await client.get("/v1/models")).json()["models"]
        assert models == ["churn-classifier", "churn-classifier-explainer"]
        meta = (await client.get("/v2/models/churn-classifier-explainer")).json()
        assert meta["inputs"] == [{"name": "features", "datatype": "FP64", "shape": [-1, 5]}]
        assert meta["outputs"] == [{"name": "explanation", "datatype": "BYTES", "shape": [-1]}]
        assert (await client.get("/v2/models/churn-classifier-explainer/ready")).json()["ready"] is True
        body = {
            "id": "e1",
            "inputs": [
                {"name": "features", "datatype": "FP64", "shape": [2, 5], "data": [41, 30, 120.5, 6, 21] * 2}
            ],
            "parameters": {"explain_parameters": {"threshold": 0.9}},
        }
        r = await client.post("/v2/models/churn-classifier-explainer/infer", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["id"] == "e1" and out["model_name"] == "churn-classifier-explainer"
        [tensor] = out["outputs"]
        assert tensor["name"] == "explanation" and tensor["shape"] == [2]
        assert tensor["parameters"] == {"content_type": "str"}
        first = json.loads(tensor["data"][0])
        assert first["meta"]["params"]["threshold"] == 0.9 and first["data"]["anchor"]
        bad = dict(body, parameters={"explain_parameters": {"beam": 2}})
        r = await client.post("/v2/models/churn-classifier-explainer/infer", json=bad)
        assert r.status_code == 400 and "parameters.explain_parameters.beam" in r.json()["error"]
        r = await client.post("/v1/models/churn-classifier-explainer:predict", json={"instances": [ROW]})
        assert r.status_code == 400 and ":explain" in r.json()["error"]


async def test_past_the_timeout_is_504_and_the_next_request_is_served(churn_artifacts: Path) -> None:
    plan = anchor_plan(churn_artifacts)
    plan = replace(plan, explainer=replace(plan.explainer, scaling=Scaling(timeout_s=1.0)))
    async with await make_client(plan) as client:
        url = "/v1/models/churn-classifier:explain"
        slow = {"threshold": 1.0, "delta": 1e-12, "tau": 0.001, "min_samples_start": 5000, "batch_size": 1000,
                "binary_cache_size": 100, "coverage_samples": 1000, "beam_size": 20}  # fmt: skip
        r = await client.post(url, json={"instances": [ROW], "parameters": slow})
        assert r.status_code == 504 and "timeout of 1s" in r.json()["error"]
        r = await client.post(url, json={"instances": [HIGH]})
        assert r.status_code == 200 and r.json()["explanations"][0]["data"]["anchor"]
        p = await client.post("/v1/models/churn-classifier:predict", json={"instances": [ROW]})
        assert p.status_code == 200


async def test_explain_input_is_what_preprocess_gives_for_perturbed_rows(churn_artifacts: Path) -> None:
    from pipelines.dataplane.explain import explained_function
    from transformers_.base import Transformer
    from transformers_.churn import ChurnTransformer

    class ViaV1Bodies(ChurnTransformer):
        explain_input = Transformer.explain_input  # not overridden: rows reach preprocess as V1

    def loaded(cls: type[ChurnTransformer]) -> ChurnTransformer:
        t = cls("churn-classifier")
        t.model_dir = churn_artifacts / "transformer"
        t.load()
        return t

    seen: list[np.ndarray] = []

    async def predictor(batch: np.ndarray) -> np.ndarray:
        seen.append(np.asarray(batch))
        return np.asarray(batch)[:, :2]

    rows = np.random.default_rng(0).uniform(0, 100, (300, 5))
    fast = await explained_function(loaded(ChurnTransformer), predictor)(rows, FEATURES)
    slow = await explained_function(loaded(ViaV1Bodies), predictor)(rows, FEATURES)
    np.testing.assert_allclose(fast, slow)
    np.testing.assert_allclose(seen[0], seen[1])  # the predictor got the same scaled rows
    assert not np.allclose(seen[0], rows)  # and they were scaled
