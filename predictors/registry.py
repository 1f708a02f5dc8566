"""Resolve a runtime by import string (``module:Class``) or KServe format name.

Example::

    load_predictor_class("sklearn")                              # SKLearnPredictor
    load_predictor_class("predictors.sklearn:SKLearnPredictor")  # the same
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RUNTIME_ALIASES", "import_string", "load_predictor_class"]

RUNTIME_ALIASES = {
    "sklearn": "predictors.sklearn:SKLearnPredictor",
    "xgboost": "predictors.xgboost:XGBoostPredictor",
    "lightgbm": "predictors.lightgbm:LightGBMPredictor",
    "onnx": "predictors.onnx:ONNXPredictor",
    "pytorch": "predictors.pytorch:PyTorchPredictor",
    "huggingface": "predictors.huggingface:HuggingFacePredictor",
}
"""KServe format names of the runtimes that exist (a test imports every one): the keys of
``spec.predictor.<runtime>`` and the values of ``spec.predictor.model.modelFormat.name``.
A name the spec knows but that is missing here is reported by the planner as not built yet
rather than letting a replica die on import."""


def import_string(path: str) -> Any:
    """Import ``"package.module:Attr"`` (``.`` also accepted before the attribute)."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ImportError(f"{path!r} is not an import string like 'package.module:Class'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from exc


def load_predictor_class(runtime: str) -> Any:
    """The predictor class for a runtime alias or an import string."""
    return import_string(RUNTIME_ALIASES.get(runtime, runtime))
