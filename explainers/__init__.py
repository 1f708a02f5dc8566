"""Explainers: one small base class (``load``, ``explain``) and adapters that get a
``predict_fn(np.ndarray)``: Anchor via alibi (imported lazily), SHAP via ``shap`` directly.

>>> sorted(EXPLAINERS)
['AnchorTabular', 'AnchorText', 'ExactShap', 'KernelShap', 'PermutationShap', 'TreeShap']
"""

from explainers.anchor import AnchorTabularExplainer, AnchorTextExplainer
from explainers.base import Explainer, PredictFn
from explainers.data import Background, load_background
from explainers.shap_ import (
    ExactShapExplainer,
    KernelShapExplainer,
    PermutationShapExplainer,
    TreeShapExplainer,
)

EXPLAINERS: dict[str, type[Explainer]] = {
    "AnchorTabular": AnchorTabularExplainer,
    "AnchorText": AnchorTextExplainer,
    "KernelShap": KernelShapExplainer,
    "PermutationShap": PermutationShapExplainer,
    "ExactShap": ExactShapExplainer,
    "TreeShap": TreeShapExplainer,
}
"""Explainer ``type`` → class, for the types that are built (``spec.explainer.{alibi,shap}.type``)."""

__all__ = [
    "EXPLAINERS",
    "AnchorTabularExplainer",
    "AnchorTextExplainer",
    "Background",
    "ExactShapExplainer",
    "Explainer",
    "KernelShapExplainer",
    "PermutationShapExplainer",
    "PredictFn",
    "TreeShapExplainer",
    "load_background",
]
