"""Explainers: one small base class (``load``, ``explain``) and adapters that get a
``predict_fn(np.ndarray)``: Anchor via alibi (imported lazily), SHAP via ``shap`` directly.

>>> sorted(EXPLAINERS)
['AnchorTabular', 'KernelShap']
"""

from explainers.anchor import AnchorTabularExplainer
from explainers.base import Explainer, PredictFn
from explainers.data import Background, load_background
from explainers.shap_ import KernelShapExplainer

EXPLAINERS: dict[str, type[Explainer]] = {
    "AnchorTabular": AnchorTabularExplainer,
    "KernelShap": KernelShapExplainer,
}
"""Explainer ``type`` → class, for the types that are built (``spec.explainer.{alibi,shap}.type``)."""

__all__ = [
    "EXPLAINERS",
    "AnchorTabularExplainer",
    "Background",
    "Explainer",
    "KernelShapExplainer",
    "PredictFn",
    "load_background",
]
