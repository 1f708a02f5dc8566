"""Model runtimes: one module per runtime, each a :class:`Predictor` subclass, no Ray."""

from predictors.base import Predictor, TensorSpec
from predictors.registry import RUNTIME_ALIASES, load_predictor_class

__all__ = ["Predictor", "TensorSpec", "RUNTIME_ALIASES", "load_predictor_class"]
