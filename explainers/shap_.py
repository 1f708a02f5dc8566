"""KernelShap through the ``shap`` package directly (alibi's SHAP wrappers break on shap ≥ 0.45).

The explanation of one instance::

    {"shap_values": [[...], ...],   # [features][outputs] (one column per model output)
     "expected_value": [...],       # per output: the mean model output over the background
     "feature_names": [...], "link": "identity",
     "output": [...]}               # f(x): expected_value + sum(shap_values) (in link space)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from explainers.base import Explainer, PredictFn
from explainers.data import load_background

__all__ = ["KernelShapExplainer"]

LINKS = ("identity", "logit")


class KernelShapExplainer(Explainer):
    """Model-agnostic SHAP values: ``shap.KernelExplainer`` over a sample of the background data."""

    kind = "KernelShap"
    config_keys = ("nsamples", "l1_reg", "link", "background_size", "seed")

    def load(self, artifact_dir: Path | None, predict_fn: PredictFn) -> None:
        import shap

        link = self.config.get("link", "identity")
        if link not in LINKS:
            raise ValueError(f"config.link: expected one of {', '.join(LINKS)}, got {link!r}")
        background = load_background(artifact_dir)
        self.feature_names = background.feature_names
        size = int(self.config.get("background_size", 50))
        seed = int(self.config.get("seed", 0))
        sample = shap.sample(background.data, min(size, len(background.data)), random_state=seed)
        self.link = link
        self._explainer = shap.KernelExplainer(predict_fn, sample, link=link)
        self.ready = True

    def explain_one(self, x: np.ndarray, config: dict[str, Any]) -> dict[str, Any]:
        if config.get("link", self.link) != self.link:
            raise ValueError("parameters.link: the link is fixed when the explainer is fitted")
        np.random.seed(int(config.get("seed", 0)))  # KernelExplainer samples with numpy's global RNG
        values = self._explainer.shap_values(
            x.reshape(1, -1),
            nsamples=config.get("nsamples", "auto"),
            l1_reg=config.get("l1_reg", "num_features(10)"),
            silent=True,
        )
        sv = np.asarray(values)[0]  # (features,) or (features, outputs)
        if sv.ndim == 1:
            sv = sv[:, None]
        expected = np.atleast_1d(np.asarray(self._explainer.expected_value, dtype=np.float64))
        return {
            "shap_values": sv.tolist(),
            "expected_value": expected.tolist(),
            "feature_names": self.feature_names,
            "link": self.link,
            "output": (expected + sv.sum(axis=0)).tolist(),
        }
