"""Explainers on a tiny model with a known rule (churn = support_tickets > 5), no Ray, no HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from explainers import (
    EXPLAINERS,
    AnchorTabularExplainer,
    KernelShapExplainer,
    TreeShapExplainer,
    load_background,
)
from pipelines.errors import StorageError

NAMES = ["age", "tenure_days", "monthly_spend", "support_tickets", "last_login_days"]


@pytest.fixture(scope="module")
def rule(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DecisionTreeClassifier]:
    rng = np.random.default_rng(3)
    x = np.column_stack([
        rng.integers(18, 80, 600), rng.integers(1, 2000, 600), rng.uniform(5, 200, 600),
        rng.integers(0, 11, 600), rng.integers(0, 60, 600),
    ]).astype(np.float64)  # fmt: skip
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, (x[:, 3] > 5).astype(int))
    folder = tmp_path_factory.mktemp("explainer")
    np.save(folder / "background.npy", x[:300])
    (folder / "metadata.json").write_text(json.dumps({"feature_names": NAMES}))
    return folder, model


def test_anchor_names_the_rule_with_precision_over_the_threshold(rule) -> None:
    folder, model = rule
    explainer = AnchorTabularExplainer("churn", {"threshold": 0.95, "seed": 1, "max_samples_start": 100})
    calls: list[int] = []

    def predict(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return model.predict(batch)

    explainer.load(folder, predict)
    x = np.array([[41, 30, 120.5, 8, 21], [30, 900, 50.0, 1, 3]])
    first, second = explainer.explain(x)  # every instance, not only the first
    assert any("support_tickets" in clause for clause in first["data"]["anchor"])
    assert first["data"]["precision"] >= 0.95 and 0 < first["data"]["coverage"] <= 1
    assert first["meta"]["name"] == "AnchorTabular" and first["meta"]["params"]["min_samples_start"] == 100
    assert second["data"]["raw"]["prediction"] == [0] and first["data"]["raw"]["prediction"] == [1]
    assert max(calls) > 1  # whole sampling batches, not one row at a time


def test_anchor_with_a_seed_is_reproducible_and_string_config_is_read(rule) -> None:
    folder, model = rule
    explainer = AnchorTabularExplainer("churn", {"seed": "1", "threshold": "0.9"})  # KServe's string map
    explainer.load(folder, model.predict)
    x = np.array([[41, 30, 120.5, 8, 21]])
    first, again = explainer.explain(x)[0], explainer.explain(x)[0]
    assert first["meta"]["params"]["threshold"] == 0.9
    assert first["data"]["anchor"] == again["data"]["anchor"]
    assert first["data"]["precision"] == again["data"]["precision"]


def test_anchor_parameters_override_config_and_are_checked(rule) -> None:
    folder, model = rule
    explainer = AnchorTabularExplainer("churn", {"seed": 1})
    explainer.load(folder, model.predict)
    loose = explainer.explain(np.array([[41, 30, 120.5, 8, 21]]), {"threshold": 0.5})[0]
    assert loose["meta"]["params"]["threshold"] == 0.5
    with pytest.raises(
        ValueError, match="parameters.treshold: unknown AnchorTabular setting; did you mean 'threshold'"
    ):
        explainer.explain(np.array([[41, 30, 120.5, 8, 21]]), {"treshold": 0.5})


def test_unknown_config_key_names_the_nearest() -> None:
    with pytest.raises(
        ValueError, match="config.beam_sise: unknown AnchorTabular setting; did you mean 'beam_size'"
    ):
        AnchorTabularExplainer("m", {"beam_sise": 2})
    assert KernelShapExplainer.check_config({"nsample": 10}) == [
        "config.nsample: unknown KernelShap setting; did you mean 'nsamples'?"
    ]
    assert set(EXPLAINERS) == {
        "AnchorTabular",
        "AnchorText",
        "KernelShap",
        "PermutationShap",
        "ExactShap",
        "TreeShap",
    }


def test_kernel_shap_values_add_up_to_the_model_output(rule) -> None:
    folder, model = rule
    explainer = KernelShapExplainer("churn", {"nsamples": 200, "background_size": 30})
    explainer.load(folder, model.predict_proba)
    x = np.array([[41, 30, 120.5, 8, 21], [30, 900, 50.0, 1, 3]])
    explanations = explainer.explain(x)
    assert len(explanations) == 2
    for row, e in zip(x, explanations, strict=True):
        sv = np.asarray(e["shap_values"])  # [features][outputs]
        assert sv.shape == (5, 2) and e["feature_names"] == NAMES and e["link"] == "identity"
        # Kernel SHAP's sum constraint is exact up to float error (the sampling error is in how
        # the total is shared among features, not in the total).
        np.testing.assert_allclose(np.asarray(e["expected_value"]) + sv.sum(axis=0), e["output"], atol=1e-9)
        np.testing.assert_allclose(e["output"], model.predict_proba(row[None])[0], atol=1e-6)
        assert abs(sv[3, 1]) == np.abs(sv[:, 1]).max()  # support_tickets carries the decision


@pytest.mark.parametrize("kind", ["PermutationShap", "ExactShap"])
def test_permutation_and_exact_shap_add_up_and_find_the_rule(rule, kind: str) -> None:
    folder, model = rule
    calls: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return model.predict_proba(x)

    explainer = EXPLAINERS[kind]("churn", {"background_size": "20", "seed": "1"})
    explainer.load(folder, predict)
    x = np.array([[41, 30, 120.5, 8, 21], [30, 900, 50.0, 1, 3]])
    explanations = explainer.explain(x)
    assert len(explanations) == 2 and calls  # whole masked batches, not one row per call
    assert max(calls) > 1
    for row, e in zip(x, explanations, strict=True):
        sv = np.asarray(e["shap_values"])
        assert sv.shape == (5, 2) and e["feature_names"] == NAMES
        np.testing.assert_allclose(np.asarray(e["expected_value"]) + sv.sum(axis=0), e["output"], atol=1e-9)
        np.testing.assert_allclose(e["output"], model.predict_proba(row[None])[0], atol=1e-6)
        assert abs(sv[3, 1]) == np.abs(sv[:, 1]).max()
    if kind == "PermutationShap":
        again = EXPLAINERS[kind]("churn", {"background_size": "20", "seed": "1"})
        again.load(folder, model.predict_proba)
        assert again.explain(x[:1]) == explanations[:1]  # the seed fixes the permutations
        assert explainer.check_config({"max_eval": 10}) == [
            "config.max_eval: unknown PermutationShap setting; did you mean 'max_evals'?"
        ]


def test_background_artifacts_fail_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no background data"):
        load_background(tmp_path)
    (tmp_path / "background.npy").write_bytes(b"")
    with pytest.raises(StorageError, match="background.npy: cannot read background data"):
        load_background(tmp_path)
    (tmp_path / "background.npy").unlink()
    np.save(tmp_path / "background.npy", np.array([["1", "x"]]))
    with pytest.raises(StorageError, match="background.npy: background data must be numeric"):
        load_background(tmp_path)
    (tmp_path / "background.npy").unlink()
    (tmp_path / "background.csv").write_text("a,b\n1,y\n2,x\n")  # a string column is categorical
    loaded = load_background(tmp_path)
    assert loaded.categorical_names == {1: ["x", "y"]} and loaded.data.tolist() == [[1, 1], [2, 0]]
    (tmp_path / "metadata.json").write_text(json.dumps({"categorical_names": {"1": ["y"]}}))
    with pytest.raises(StorageError, match="column 'b' holds 'x', not among its categorical_names"):
        load_background(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"categorical_names": {"0": ["p", "q"]}}))
    with pytest.raises(StorageError, match=r"column 0 \(a\) is categorical; its codes must be 0..1"):
        load_background(tmp_path)
    (tmp_path / "metadata.json").unlink()
    (tmp_path / "background.csv").write_text("a,b\n1,2\n3,4\n")
    assert load_background(tmp_path).feature_names == ["a", "b"]
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(StorageError, match="metadata.json: not valid JSON"):
        load_background(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"feature_names": ["only-one"]}))
    with pytest.raises(StorageError, match="feature_names must list 2 names"):
        load_background(tmp_path)
    np.save(tmp_path / "train.npy", np.zeros((2, 2)))
    with pytest.raises(StorageError, match="several background files"):
        load_background(tmp_path)


class _Served:
    """What a predictor runtime exposes to TreeShap: the model and the method it serves."""

    def __init__(self, model: object, method: str) -> None:
        self.model, self.method = model, method


def test_tree_shap_adds_up_in_probability_space_with_background(rule) -> None:
    from sklearn.ensemble import RandomForestClassifier

    folder, _ = rule
    x = np.load(folder / "background.npy")
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(
        x, (x[:, 3] > 5).astype(int)
    )
    explainer = TreeShapExplainer("churn", {"background_size": 50})
    explainer.load(folder, forest.predict_proba, model=_Served(forest, "predict_proba"))
    rows = np.array([[41, 30, 120.5, 8, 21], [30, 900, 50.0, 1, 3]])
    for row, e in zip(rows, explainer.explain(rows), strict=True):
        sv = np.asarray(e["shap_values"])
        assert e["model_output"] == "probability" and sv.shape == (5, 2) and e["feature_names"] == NAMES
        np.testing.assert_allclose(np.asarray(e["expected_value"]) + sv.sum(axis=0), e["output"], atol=1e-12)
        np.testing.assert_allclose(e["output"], forest.predict_proba(row[None])[0], atol=1e-6)
        assert np.abs(sv[:, 1]).argmax() == 3


def test_tree_shap_raw_margin_without_background_and_clear_errors(rule, tmp_path: Path) -> None:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    folder, _ = rule
    x = np.load(folder / "background.npy")
    y = (x[:, 3] > 5).astype(int)
    gb = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(x, y)
    explainer = TreeShapExplainer("m")
    explainer.load(None, gb.predict, model=_Served(gb, "predict"))
    e = explainer.explain(x[:1])[0]
    assert e["model_output"] == "raw"
    np.testing.assert_allclose(e["output"], gb.decision_function(x[:1]), atol=1e-6)
    with pytest.raises(StorageError, match="probability space needs background data"):
        TreeShapExplainer("m").load(None, gb.predict_proba, model=_Served(gb, "predict_proba"))
    linear = LogisticRegression().fit(x, y)
    with pytest.raises(StorageError, match="TreeShap cannot read the predictor's model .LogisticRegression"):
        TreeShapExplainer("m").load(folder, linear.predict, model=_Served(linear, "predict"))


@pytest.mark.parametrize("form", ["alibi-folder", "kserve-dill"])
def test_a_saved_anchor_explainer_loads(rule, tmp_path: Path, form: str) -> None:
    import dill
    from alibi.explainers import AnchorTabular
    from alibi.saving import save_explainer

    folder, model = rule
    fitted = AnchorTabular(model.predict, feature_names=NAMES, seed=1)
    fitted.fit(np.load(folder / "background.npy"))
    if form == "alibi-folder":
        save_explainer(fitted, tmp_path)
    else:  # KServe's explainer.dill: the fitted explainer, without its predictor
        fitted.predictor = None
        with open(tmp_path / "explainer.dill", "wb") as f:
            dill.dump(fitted, f, recurse=True)
    explainer = AnchorTabularExplainer("churn", {"seed": 1})
    explainer.load(tmp_path, model.predict)
    assert explainer.feature_names == NAMES
    e = explainer.explain(np.array([[41, 30, 120.5, 8, 21]]))[0]
    assert any("support_tickets" in clause for clause in e["data"]["anchor"])
    (tmp_path / "explainer.dill").write_bytes(b"not a pickle")
    with pytest.raises(StorageError, match="cannot load the saved explainer"):
        AnchorTabularExplainer("churn").load(tmp_path, model.predict)
