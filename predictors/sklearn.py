"""scikit-learn runtime: ``model.joblib`` / ``model.pkl`` / ``model.pickle`` in the model folder.

Example::

    p = SKLearnPredictor("churn", method="predict_proba")
    p.load("artifacts/churn/predictor")
    p.predict(np.zeros((2, 5)))        # -> array of shape (2, 2)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn

from pipelines.errors import InvalidInput, StorageError
from predictors._files import find_model_file, need_dir
from predictors.base import Predictor, TensorSpec

__all__ = ["SKLearnPredictor"]

EXTENSIONS = (".joblib", ".pkl", ".pickle")
METHODS = ("predict", "predict_proba")
PREDICT_PROBA_ENV = "PREDICT_PROBA"


class SKLearnPredictor(Predictor):
    """Runs a fitted estimator's ``predict`` or ``predict_proba``.

    As in KServe's sklearn server, the component env ``PREDICT_PROBA=true`` (any case) calls
    ``predict_proba`` when the estimator has one (and ``predict`` when it has not); isvc's
    ``args: ["--method=predict_proba"]`` (or ``predict``) says it explicitly and wins over
    the env. The env is read once, here, in the replica the env was given to.
    """

    platform = "sklearn"

    def __init__(self, name: str, method: str | None = None, **options: Any) -> None:
        super().__init__(name, **options)
        if method is not None and method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method or "predict"
        self._proba_env = method is None and os.environ.get(PREDICT_PROBA_ENV, "false").lower() == "true"
        self.model: Any = None
        self._fn: Any = None

    def load(self, model_dir: str | Path | None) -> None:
        path = find_model_file(need_dir(model_dir, "sklearn"), EXTENSIONS, "sklearn")
        try:
            self.model = joblib.load(path)
        except Exception as exc:  # unpickling errors have no common base
            raise StorageError(f"sklearn: cannot load {path}: {type(exc).__name__}: {exc}") from exc
        if self._proba_env and hasattr(self.model, "predict_proba"):
            self.method = "predict_proba"
        if not hasattr(self.model, self.method):
            raise StorageError(f"{type(self.model).__name__} has no {self.method}()")
        self._fn = getattr(self.model, self.method)
        self.ready = True

    def n_features(self) -> int | None:
        return getattr(self.model, "n_features_in_", None)

    def predict(self, batch: Any) -> np.ndarray:
        n = self.n_features()
        shape = getattr(batch, "shape", None)
        if n is not None and shape is not None and (len(shape) != 2 or shape[1] != n):
            raise InvalidInput(f"model '{self.name}' expects rows of {n} features, got shape {list(shape)}")
        try:
            if isinstance(batch, np.ndarray) and batch.dtype.kind == "f":
                # Checked here in microseconds, so sklearn can skip its slower check.
                if not np.isfinite(batch).all():
                    raise InvalidInput(f"model '{self.name}': input contains NaN or infinity")
                with sklearn.config_context(assume_finite=True):
                    return np.asarray(self._fn(batch))
            return np.asarray(self._fn(batch))
        except ValueError as exc:  # sklearn's own input checks
            raise InvalidInput(f"model '{self.name}': {exc}") from exc

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("input-0", "FP64", [-1, self.n_features() or -1])]

    def outputs(self) -> list[TensorSpec]:
        if self.method == "predict_proba":
            k = len(getattr(self.model, "classes_", [])) or -1
            return [TensorSpec("output-0", "FP64", [-1, k])]
        return [TensorSpec("output-0", "FP64", [-1])]
