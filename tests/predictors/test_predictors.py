"""The sklearn runtime and the runtime registry, on models trained into tmp_path."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pipelines.errors import InvalidInput, StorageError
from predictors import load_predictor_class
from predictors.sklearn import SKLearnPredictor


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
