"""The one base class every model runtime subclasses.

Example::

    class MeanPredictor(Predictor):
        def load(self, model_dir):
            self.ready = True

        def predict(self, batch):
            return np.asarray(batch).mean(axis=1)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.protocol import TensorSpec

__all__ = ["Predictor", "TensorSpec"]


class Predictor:
    """A model runtime: ``load(model_dir)`` once, then ``predict(batch)`` many times.

    ``batch`` is a 2-D :class:`numpy.ndarray` (rows × features) or a
    :class:`pandas.DataFrame` (when a request carried named columns); ``predict``
    returns an array with one entry (or row) per input row. Subclasses override
    ``load`` and ``predict``; everything else has a default. No Ray here.
    """

    platform = "custom"
    """Reported as ``platform`` in V2 model metadata."""

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.options = options
        self.ready = False

    def load(self, model_dir: str | Path | None) -> None:  # pragma: no cover - overridden
        """Override: read the model from ``model_dir`` and set ``self.ready = True``."""
        self.ready = True

    def predict(self, batch: Any) -> np.ndarray:  # pragma: no cover - overridden
        """Override: return one prediction per row of ``batch``."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict()")

    def inputs(self) -> list[TensorSpec]:
        """V2 metadata of the expected inputs; override when the model knows them."""
        return [TensorSpec("input-0", "FP64", [-1, -1])]

    def outputs(self) -> list[TensorSpec]:
        """V2 metadata of the outputs; override when the model knows them."""
        return [TensorSpec("output-0", "FP64", [-1])]
