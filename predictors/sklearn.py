"""scikit-learn runtime: ``model.joblib`` / ``model.pkl`` / ``model.pickle`` in the model folder.

Example::

    p = SKLearnPredictor("churn", method="predict_proba")
    p.load("artifacts/churn/predictor")
    p.predict(np.zeros((2, 5)))        # -> array of shape (2, 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn

from pipelines.errors import InvalidInput, StorageError
from predictors.base import Predictor, TensorSpec

__all__ = ["SKLearnPredictor"]

MODEL_FILES = ("model.joblib", "model.pkl", "model.pickle")
METHODS = ("predict", "predict_proba")


def find_model_file(model_dir: Path, names: tuple[str, ...] = MODEL_FILES) -> Path:
    """The model file in ``model_dir`` (or ``model_dir`` itself when it is a file)."""
    if model_dir.is_file():
        return model_dir
    for name in names:
        if (model_dir / name).is_file():
            return model_dir / name
    candidates = sorted(p.name for p in model_dir.glob("*") if p.suffix in {".joblib", ".pkl", ".pickle"})
    if len(candidates) == 1:
        return model_dir / candidates[0]
    raise StorageError(f"no model file in {model_dir}: expected one of {', '.join(names)}")


class SKLearnPredictor(Predictor):
    """Runs a fitted estimator's ``predict`` or ``predict_proba`` (option ``method``).

    KServe's sklearn server switches to probabilities with ``PREDICT_PROBA``; here the
    option is ``method: predict_proba`` in the component's ``args``.
    """

    platform = "sklearn"

    def __init__(self, name: str, method: str = "predict", **options: Any) -> None:
        super().__init__(name, **options)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.model: Any = None
        self._fn: Any = None

    def load(self, model_dir: str | Path | None) -> None:
        if model_dir is None:
            raise StorageError("the sklearn runtime needs a storageUri")
        self.model = joblib.load(find_model_file(Path(model_dir)))
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
