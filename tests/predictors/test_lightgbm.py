"""The lightgbm runtime on boosters trained into tmp_path, against lightgbm's own predictions."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from pipelines.errors import InvalidInput, StorageError
from predictors.lightgbm import LightGBMPredictor
from tests.predictors.serving import as_array, client_for, tensor, v1_predict, v2_infer

RNG = np.random.default_rng(1)
X = RNG.normal(size=(120, 4))
Y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
NAMES = ["f0", "f1", "f2", "f3"]


def train(**params: object) -> lgb.Booster:
    data = lgb.Dataset(pd.DataFrame(X, columns=NAMES), label=Y)
    return lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, **params}, data, 5)


@pytest.mark.parametrize("filename", ["model.bst", "model.txt"])
def test_each_file_name_matches_lightgbm(tmp_path: Path, filename: str) -> None:
    booster = train()
    booster.save_model(tmp_path / filename)
    p = LightGBMPredictor("m", nthread="2")
    p.load(tmp_path)
    got = p.predict(X[:5])
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, booster.predict(X[:5]))
    assert p.inputs()[0] == {"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}
    assert p.outputs()[0] == {"name": "output-0", "datatype": "FP64", "shape": [-1, 3]}


def test_named_columns_are_reordered_and_missing_ones_are_nan(tmp_path: Path) -> None:
    booster = train()
    booster.save_model(tmp_path / "model.bst")
    p = LightGBMPredictor("m")
    p.load(tmp_path)
    frame = pd.DataFrame(X[:3], columns=NAMES)
    np.testing.assert_allclose(p.predict(frame[["f3", "f1", "f0", "f2"]]), booster.predict(X[:3]))
    without_f2 = X[:3].copy()
    without_f2[:, 2] = np.nan
    np.testing.assert_allclose(p.predict(frame[["f0", "f1", "f3"]]), booster.predict(without_f2))
    with pytest.raises(InvalidInput, match=r"unknown features \['f9'\]"):
        p.predict(frame.rename(columns={"f0": "f9"}))


def test_bad_rows_and_files(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no model file in .*model.bst, model.txt"):
        LightGBMPredictor("m").load(tmp_path)
    (tmp_path / "model.bst").write_text("garbage")
    with pytest.raises(StorageError, match="cannot load .*model.bst"):
        LightGBMPredictor("m").load(tmp_path)
    train().save_model(tmp_path / "model.bst")
    p = LightGBMPredictor("m")
    p.load(tmp_path)
    with pytest.raises(InvalidInput, match="expects rows of 4 features"):
        p.predict(np.zeros((1, 3)))


async def test_served_through_v1_and_v2(tmp_path: Path) -> None:
    booster = train()
    booster.save_model(tmp_path / "model.bst")
    expected = booster.predict(X[:4])
    async with await client_for({"lightgbm": {"storageUri": str(tmp_path)}}) as client:
        np.testing.assert_allclose(await v1_predict(client, X[:4].tolist()), expected)
        rows = [dict(zip(NAMES, r, strict=True)) for r in X[:2].tolist()]
        np.testing.assert_allclose(await v1_predict(client, rows), expected[:2])
        (out,) = await v2_infer(client, [tensor("input-0", X[:4].astype(np.float32), "FP32")])
        assert out["datatype"] == "FP64" and out["shape"] == [4, 3]
        np.testing.assert_allclose(as_array(out), booster.predict(X[:4].astype(np.float32)))
        assert (await client.get("/v2/models/m")).json()["platform"] == "lightgbm"
