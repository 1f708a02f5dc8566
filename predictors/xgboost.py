"""XGBoost runtime: ``model.bst``, ``model.json`` or ``model.ubj`` in the model folder.

As KServe's xgbserver: one file ending in ``.bst``, ``.json`` or ``.ubj``, loaded as a
``Booster`` with ``nthread`` (arg ``--nthread``, default 1); rows go through a ``DMatrix``;
the output is whatever the objective gives (probabilities for ``binary:logistic`` and
``multi:softprob``, class ids for ``multi:softmax``), always float32.

Example::

    p = XGBoostPredictor("iris", nthread="2")
    p.load("artifacts/iris")           # artifacts/iris/model.json
    p.predict(np.zeros((2, 4)))        # float32, shape (2,) or (2, classes)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import InvalidInput, StorageError
from predictors._files import find_model_file, need_dir, positive_int
from predictors.base import Predictor, TensorSpec

__all__ = ["XGBoostPredictor"]

EXTENSIONS = (".bst", ".json", ".ubj")


class XGBoostPredictor(Predictor):
    """Runs ``Booster.predict`` on a 2-D array or a DataFrame (columns by the model's feature names)."""

    platform = "xgboost"

    def __init__(self, name: str, nthread: int | str = 1) -> None:
        super().__init__(name)
        self.nthread = positive_int(nthread, "nthread")
        self.booster: Any = None
        self._out_shape: tuple[int, ...] = ()

    def load(self, model_dir: str | Path | None) -> None:
        import xgboost as xgb

        path = find_model_file(need_dir(model_dir, "xgboost"), EXTENSIONS, "xgboost")
        try:
            # From a buffer, as KServe does: xgboost then reads the format from the content.
            self.booster = xgb.Booster(
                params={"nthread": self.nthread}, model_file=bytearray(path.read_bytes())
            )
        except xgb.core.XGBoostError as exc:
            raise StorageError(f"xgboost: cannot load {path}: {_first_line(exc)}") from exc
        zeros = np.zeros((1, self.booster.num_features()))
        probe = self.booster.predict(xgb.DMatrix(zeros, feature_names=self.booster.feature_names))
        self._out_shape = tuple(probe.shape[1:])
        self.ready = True

    def predict(self, batch: Any) -> np.ndarray:
        import pandas as pd
        import xgboost as xgb

        n = self.booster.num_features()
        names = self.booster.feature_names
        if isinstance(batch, pd.DataFrame) and names is None:
            batch = batch.to_numpy()
        if isinstance(batch, pd.DataFrame):
            unknown = [c for c in batch.columns if c not in names]
            missing = [c for c in names if c not in batch.columns]
            if unknown or missing:
                raise InvalidInput(
                    f"model '{self.name}': columns must be the model's features {names}; "
                    + (f"unknown {unknown}" if unknown else f"missing {missing}")
                )
            batch = batch[names]
        else:
            batch = np.asarray(batch)
            if batch.ndim != 2 or batch.shape[1] != n:
                raise InvalidInput(
                    f"model '{self.name}' expects rows of {n} features, got shape {list(batch.shape)}"
                )
            if batch.dtype.kind not in "biuf":
                raise InvalidInput(f"model '{self.name}' expects numbers, got {batch.dtype} values")
        try:
            matrix = xgb.DMatrix(batch, nthread=self.nthread, feature_names=names)
            return np.asarray(self.booster.predict(matrix), dtype=np.float32)
        except (xgb.core.XGBoostError, ValueError, TypeError) as exc:
            raise InvalidInput(f"model '{self.name}': {_first_line(exc)}") from exc

    def inputs(self) -> list[TensorSpec]:
        n = self.booster.num_features() if self.booster is not None else -1
        return [TensorSpec("input-0", "FP32", [-1, n])]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("output-0", "FP32", [-1, *self._out_shape])]


def _first_line(exc: BaseException) -> str:
    """XGBoost's messages carry a C++ stack trace after the first line."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
