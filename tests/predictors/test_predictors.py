"""The sklearn runtime and the runtime registry, on models trained into tmp_path."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from pipelines.errors import InvalidInput, StorageError
from predictors import load_predictor_class
from predictors.sklearn import SKLearnPredictor
from tests.predictors.serving import as_array, client_for, plan_for, tensor, v1_predict, v2_infer


@pytest.fixture
def iris_like(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(pd.DataFrame(x, columns=["a", "b", "c"]), y)
    joblib.dump(model, tmp_path / "model.pkl")
    return tmp_path, x


def test_registry_resolves_aliases_and_import_strings():
    assert load_predictor_class("sklearn") is SKLearnPredictor
    assert load_predictor_class("predictors.sklearn:SKLearnPredictor") is SKLearnPredictor
    with pytest.raises(ImportError):
        load_predictor_class("predictors.sklearn:Nope")


@pytest.mark.parametrize("filename", ["model.joblib", "model.pkl", "model.pickle"])
def test_loads_each_model_file_name(tmp_path: Path, filename: str):
    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    joblib.dump(model, tmp_path / filename)
    p = SKLearnPredictor("m")
    p.load(tmp_path)
    assert p.ready and p.predict(np.array([[0.0], [1.0]])).tolist() == [0, 1]


def test_predict_proba_on_arrays_lists_and_dataframes(iris_like):
    folder, x = iris_like
    p = SKLearnPredictor("m", method="predict_proba")
    p.load(folder)
    from_array = p.predict(x[:4])
    assert from_array.shape == (4, 2)
    np.testing.assert_allclose(from_array.sum(axis=1), 1.0)
    df = pd.DataFrame(x[:4], columns=["a", "b", "c"])
    np.testing.assert_allclose(p.predict(df), from_array)
    assert p.inputs()[0]["shape"] == [-1, 3]
    assert p.outputs()[0]["shape"] == [-1, 2]


def test_wrong_feature_count_is_invalid_input(iris_like):
    folder, _ = iris_like
    p = SKLearnPredictor("m")
    p.load(folder)
    with pytest.raises(InvalidInput, match="expects rows of 3 features"):
        p.predict(np.zeros((1, 4)))


def test_missing_model_file_and_bad_method(tmp_path: Path):
    with pytest.raises(StorageError, match="no model file"):
        SKLearnPredictor("m").load(tmp_path)
    with pytest.raises(ValueError, match="method"):
        SKLearnPredictor("m", method="transform")


@pytest.mark.parametrize(
    ("env", "method"), [("true", "predict_proba"), ("TRUE", "predict_proba"), ("no", "predict")]
)
def test_predict_proba_env_as_kserve_reads_it(iris_like, monkeypatch, env: str, method: str):
    folder, x = iris_like
    monkeypatch.setenv("PREDICT_PROBA", env)
    p = SKLearnPredictor("m")
    p.load(folder)
    expected = getattr(joblib.load(folder / "model.pkl"), method)(x[:3])
    np.testing.assert_allclose(p.predict(x[:3]), expected)
    assert p.method == method


def test_method_arg_wins_over_env_and_env_needs_predict_proba(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PREDICT_PROBA", "true")
    joblib.dump(LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1]), tmp_path / "model.joblib")
    explicit = SKLearnPredictor("m", method="predict")
    explicit.load(tmp_path)
    assert explicit.predict(np.array([[1.0]])).tolist() == [1]
    (tmp_path / "model.joblib").unlink()
    joblib.dump(LinearRegression().fit(np.array([[0.0], [1.0]]), [0.0, 2.0]), tmp_path / "model.joblib")
    no_proba = SKLearnPredictor("m")  # KServe falls back to predict() too
    no_proba.load(tmp_path)
    assert no_proba.method == "predict" and no_proba.predict(np.array([[1.0]])).tolist() == pytest.approx(
        [2.0]
    )


def test_several_or_corrupt_model_files_are_storage_errors(tmp_path: Path):
    (tmp_path / "a.pkl").write_bytes(b"x")
    (tmp_path / "b.joblib").write_bytes(b"x")
    with pytest.raises(StorageError, match=r"more than one model file .*\['a.pkl', 'b.joblib'\]"):
        SKLearnPredictor("m").load(tmp_path)
    (tmp_path / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(StorageError, match="cannot load .*model.pkl"):
        SKLearnPredictor("m").load(tmp_path)


async def test_predict_proba_env_through_v1_and_v2(iris_like, monkeypatch):
    folder, x = iris_like
    monkeypatch.setenv("PREDICT_PROBA", "true")  # what the replica's runtime_env sets from spec env
    spec = {"sklearn": {"storageUri": str(folder), "env": [{"name": "PREDICT_PROBA", "value": "true"}]}}
    assert plan_for(spec).predictor.env == {"PREDICT_PROBA": "true"}
    expected = joblib.load(folder / "model.pkl").predict_proba(x[:2])
    async with await client_for(spec) as client:
        np.testing.assert_allclose(await v1_predict(client, x[:2].tolist()), expected)
        (out,) = await v2_infer(client, [tensor("input-0", x[:2], "FP64")])
        assert out["shape"] == [2, 2]
        np.testing.assert_allclose(as_array(out), expected)
