"""The xgboost runtime on boosters trained into tmp_path, against xgboost's own predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from pipelines.errors import InvalidInput, StorageError
from predictors.xgboost import XGBoostPredictor
from tests.predictors.serving import as_array, client_for, tensor, v1_predict, v2_infer

RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 4))
Y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)


def train(objective: str, **params: object) -> xgb.Booster:
    label = Y3 if objective.startswith("multi") else (Y3 > 0).astype(int)
    return xgb.train({"objective": objective, **params}, xgb.DMatrix(X, label=label), num_boost_round=4)


@pytest.mark.parametrize("filename", ["model.bst", "model.json", "model.ubj"])
def test_each_file_format_matches_xgboost(tmp_path: Path, filename: str) -> None:
    booster = train("multi:softprob", num_class=3)
    booster.save_model(tmp_path / filename)
    p = XGBoostPredictor("m", nthread="2")
    p.load(tmp_path)
    got = p.predict(X[:5])
    assert got.dtype == np.float32 and got.shape == (5, 3)
    np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(X[:5])), rtol=1e-6)
    assert p.inputs()[0] == {"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}
    assert p.outputs()[0]["shape"] == [-1, 3]


def test_softmax_gives_class_ids_as_float32(tmp_path: Path) -> None:
    booster = train("multi:softmax", num_class=3)
    booster.save_model(tmp_path / "model.json")
    p = XGBoostPredictor("m")
    p.load(tmp_path / "model.json")  # the file itself also works
    got = p.predict(X[:6])
    assert got.dtype == np.float32 and got.shape == (6,)
    assert got.tolist() == booster.predict(xgb.DMatrix(X[:6])).tolist()
    assert p.outputs()[0]["shape"] == [-1]


def test_dataframe_columns_follow_feature_names(tmp_path: Path) -> None:
    names = ["a", "b", "c", "d"]
    booster = xgb.train(
        {"objective": "binary:logistic"},
        xgb.DMatrix(X, label=(Y3 > 0).astype(int), feature_names=names),
        num_boost_round=3,
    )
    booster.save_model(tmp_path / "model.ubj")
    p = XGBoostPredictor("m")
    p.load(tmp_path)
    shuffled = pd.DataFrame(X[:3], columns=names)[["d", "b", "a", "c"]]
    np.testing.assert_allclose(p.predict(shuffled), booster.predict(xgb.DMatrix(X[:3], feature_names=names)))
    with pytest.raises(InvalidInput, match=r"unknown \['e'\]"):
        p.predict(pd.DataFrame(X[:1], columns=["a", "b", "c", "e"]))


def test_bad_rows_are_invalid_input(tmp_path: Path) -> None:
    train("binary:logistic").save_model(tmp_path / "model.json")
    p = XGBoostPredictor("m")
    p.load(tmp_path)
    with pytest.raises(InvalidInput, match="expects rows of 4 features, got shape"):
        p.predict(np.zeros((2, 5)))
    with pytest.raises(InvalidInput, match="expects numbers"):
        p.predict(np.array([["a", "b", "c", "d"]], dtype=object))


def test_missing_several_and_corrupt_files_are_storage_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no model file in .*model.bst, model.json, model.ubj"):
        XGBoostPredictor("m").load(tmp_path)
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.ubj").write_bytes(b"x")
    with pytest.raises(StorageError, match=r"more than one model file .*\['a.json', 'b.ubj'\]"):
        XGBoostPredictor("m").load(tmp_path)
    (tmp_path / "model.json").write_text("not a model")
    with pytest.raises(StorageError, match="cannot load .*model.json"):
        XGBoostPredictor("m").load(tmp_path)
    with pytest.raises(StorageError, match="needs a storageUri"):
        XGBoostPredictor("m").load(None)
    with pytest.raises(ValueError, match="nthread"):
        XGBoostPredictor("m", nthread="zero")


async def test_served_through_v1_and_v2(tmp_path: Path) -> None:
    booster = train("multi:softprob", num_class=3)
    booster.save_model(tmp_path / "model.json")
    expected = booster.predict(xgb.DMatrix(X[:4]))
    spec = {
        "model": {"modelFormat": {"name": "xgboost"}, "storageUri": str(tmp_path), "args": ["--nthread=1"]}
    }
    async with await client_for(spec) as client:
        np.testing.assert_allclose(await v1_predict(client, X[:4].tolist()), expected, rtol=1e-6)
        (out,) = await v2_infer(client, [tensor("input-0", X[:4].astype(np.float32), "FP32")])
        assert out["datatype"] == "FP32" and out["shape"] == [4, 3]
        np.testing.assert_allclose(as_array(out), expected, rtol=1e-6)
        meta = (await client.get("/v2/models/m")).json()
        assert meta["platform"] == "xgboost"
        assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
        bad = await client.post("/v1/models/m:predict", json={"instances": [[1, 2, 3]]})
        assert bad.status_code == 400 and "expects rows of 4 features" in bad.json()["error"]


def test_a_misspelt_arg_is_a_spec_error_naming_it(tmp_path: Path) -> None:
    from pipelines.dataplane import load_predictor
    from pipelines.errors import SpecError
    from tests.predictors.serving import plan_for

    train("binary:logistic").save_model(tmp_path / "model.json")
    node = plan_for({"xgboost": {"storageUri": str(tmp_path), "args": ["--nthreads=2"]}}).predictor
    with pytest.raises(SpecError, match="args.nthreads: XGBoostPredictor\\(\\) takes no argument 'nthreads'"):
        load_predictor("m", node)
