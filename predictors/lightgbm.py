"""LightGBM runtime: ``model.bst`` (KServe's name) or ``model.txt`` in the model folder.

As KServe's lgbserver: a ``Booster`` loaded from the model file, ``nthread`` (arg
``--nthread``, default 1) threads per predict; rows given as objects (V1 ``{"f": v}``
instances, a DataFrame) are put in the model's feature order, and features left out are
NaN (LightGBM's missing value). Multiclass models give probabilities, shape ``(n, classes)``.

Example::

    p = LightGBMPredictor("iris")
    p.load("artifacts/iris")           # artifacts/iris/model.bst
    p.predict(np.zeros((2, 4)))        # float64, shape (2,) or (2, classes)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import InvalidInput, StorageError
from predictors._files import find_model_file, need_dir, positive_int
from predictors.base import Predictor, TensorSpec

__all__ = ["LightGBMPredictor"]

EXTENSIONS = (".bst", ".txt")


class LightGBMPredictor(Predictor):
    """Runs ``Booster.predict`` on a 2-D array or a DataFrame keyed by the model's feature names."""

    platform = "lightgbm"

    def __init__(self, name: str, nthread: int | str = 1) -> None:
        super().__init__(name)
        self.nthread = positive_int(nthread, "nthread")
        self.booster: Any = None
        self._out_shape: tuple[int, ...] = ()

    def load(self, model_dir: str | Path | None) -> None:
        import lightgbm as lgb

        path = find_model_file(need_dir(model_dir, "lightgbm"), EXTENSIONS, "lightgbm")
        try:
            self.booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise StorageError(f"lightgbm: cannot load {path}: {exc}") from exc
        probe = self.booster.predict(np.zeros((1, self.booster.num_feature())), num_threads=self.nthread)
        self._out_shape = tuple(np.asarray(probe).shape[1:])
        self.ready = True

    def predict(self, batch: Any) -> np.ndarray:
        import lightgbm as lgb
        import pandas as pd

        names = self.booster.feature_name()
        if isinstance(batch, pd.DataFrame):
            unknown = [c for c in batch.columns if c not in names]
            if unknown:
                raise InvalidInput(
                    f"model '{self.name}': unknown features {unknown}; the model's are {names}"
                )
            batch = batch.reindex(columns=names)
            non_numeric = [c for c in names if batch[c].dtype.kind not in "biuf"]
            if non_numeric:
                raise InvalidInput(f"model '{self.name}': features {non_numeric} must be numbers")
            batch = batch.to_numpy(dtype=np.float64)
        else:
            batch = np.asarray(batch)
            n = len(names)
            if batch.ndim != 2 or batch.shape[1] != n:
                raise InvalidInput(
                    f"model '{self.name}' expects rows of {n} features, got shape {list(batch.shape)}"
                )
            if batch.dtype.kind not in "biuf":
                raise InvalidInput(f"model '{self.name}' expects numbers, got {batch.dtype} values")
        try:
            return np.asarray(self.booster.predict(batch, num_threads=self.nthread))
        except lgb.basic.LightGBMError as exc:
            raise InvalidInput(f"model '{self.name}': {str(exc).splitlines()[0]}") from exc

    def inputs(self) -> list[TensorSpec]:
        n = self.booster.num_feature() if self.booster is not None else -1
        return [TensorSpec("input-0", "FP64", [-1, n])]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("output-0", "FP64", [-1, *self._out_shape])]
