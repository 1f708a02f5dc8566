"""KernelShap, PermutationShap, ExactShap and TreeShap through the ``shap`` package directly
(alibi's SHAP wrappers break on shap ≥ 0.45).

The explanation of one instance::

    {"shap_values": [[...], ...],   # [features][outputs] (one column per model output)
     "expected_value": [...],       # per output: the mean model output over the background
     "feature_names": [...], "link": "identity",
     "output": [...]}               # f(x): expected_value + sum(shap_values) (in link space)

TreeShap adds ``"model_output"``: ``"probability"`` (when the predictor serves
probabilities; needs background data) or ``"raw"`` (the trees' margin, e.g. log-odds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from explainers.base import Explainer, PredictFn
from explainers.data import Background, load_background
from pipelines.errors import StorageError

__all__ = ["ExactShapExplainer", "KernelShapExplainer", "PermutationShapExplainer", "TreeShapExplainer"]

LINKS = ("identity", "logit")


def _link_and_sample(config: dict[str, Any], artifact_dir: Path | None) -> tuple[str, Background, np.ndarray]:
    """The configured link (checked), the background data and ``background_size`` of its rows
    sampled with ``seed`` (shap's ``sample``), as the model-agnostic explainers take them."""
    import shap

    link = config.get("link", "identity")
    if link not in LINKS:
        raise ValueError(f"config.link: expected one of {', '.join(LINKS)}, got {link!r}")
    background = load_background(artifact_dir)
    size = min(int(config.get("background_size", 50)), len(background.data))
    sample = shap.sample(background.data, size, random_state=int(config.get("seed", 0)))
    return link, background, np.asarray(sample)


def default_l1_reg(features: int, nsamples: Any) -> str | bool:
    """When to select features before the fit, as shap's ``l1_reg="auto"`` (deprecated in shap
    0.49) decides it: only when under a fifth of the feature coalitions are sampled — then the
    10 strongest, by least-angle regression. With every coalition enumerated (5 features: 30,
    whatever ``nsamples`` says) the fit is exact without it, and the LARS pass only cost time:
    a quarter of a churn explanation here.

    >>> default_l1_reg(5, 200), default_l1_reg(12, "auto"), default_l1_reg(40, 2048)
    (False, False, 'num_features(10)')
    """
    coalitions = 2**30 if features > 30 else 2**features - 2
    n = 2 * features + 2048 if nsamples == "auto" else int(nsamples)
    return False if min(n, coalitions) >= 0.2 * coalitions else "num_features(10)"


class KernelShapExplainer(Explainer):
    """Model-agnostic SHAP values: ``shap.KernelExplainer`` over a sample of the background data."""

    kind = "KernelShap"
    config_keys = ("nsamples", "l1_reg", "link", "background_size", "seed")

    def load(self, artifact_dir: Path | None, predict_fn: PredictFn, model: Any = None) -> None:
        import shap

        self.link, background, sample = _link_and_sample(self.config, artifact_dir)
        self.feature_names, self.categorical_names = background.feature_names, background.categorical_names
        self._explainer = shap.KernelExplainer(predict_fn, sample, link=self.link)
        self.ready = True

    def explain_one(self, x: np.ndarray, config: dict[str, Any]) -> dict[str, Any]:
        if config.get("link", self.link) != self.link:
            raise ValueError("parameters.link: the link is fixed when the explainer is fitted")
        np.random.seed(int(config.get("seed", 0)))  # KernelExplainer samples with numpy's global RNG
        nsamples = config.get("nsamples", "auto")
        values = self._explainer.shap_values(
            x.reshape(1, -1),
            nsamples=nsamples,
            l1_reg=config.get("l1_reg", default_l1_reg(len(self.feature_names), nsamples)),
            silent=True,
        )
        return _result(values, self._explainer.expected_value, self.feature_names, self.link)


def _result(values: Any, expected_value: Any, names: list[str], link: str) -> dict[str, Any]:
    """The JSON of one instance's SHAP values (``values``: shap's output for one row)."""
    sv = np.asarray(values, dtype=np.float64)[0]  # (features,) or (features, outputs)
    if sv.ndim == 1:
        sv = sv[:, None]
    expected = np.atleast_1d(np.asarray(expected_value, dtype=np.float64))
    return {
        "shap_values": sv.tolist(),
        "expected_value": expected.tolist(),
        "feature_names": names,
        "link": link,
        "output": (expected + sv.sum(axis=0)).tolist(),
    }


class _MaskedShap(Explainer):
    """shap's model-agnostic explainers that mask features with background rows
    (``shap.maskers.Independent``): their values add up to the model output exactly."""

    def load(self, artifact_dir: Path | None, predict_fn: PredictFn, model: Any = None) -> None:
        import shap

        self.link, background, sample = _link_and_sample(self.config, artifact_dir)
        self.feature_names, self.categorical_names = background.feature_names, background.categorical_names
        masker = shap.maskers.Independent(sample, max_samples=len(sample))
        self._explainer = self._make(shap, predict_fn, masker, getattr(shap.links, self.link))
        self.ready = True

    def _make(self, shap: Any, predict_fn: PredictFn, masker: Any, link: Any) -> Any:
        """Override: the shap explainer object (every concrete subclass below does)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _make()")

    def _call_args(self, config: dict[str, Any]) -> dict[str, Any]:
        return {}

    def explain_one(self, x: np.ndarray, config: dict[str, Any]) -> dict[str, Any]:
        if config.get("link", self.link) != self.link:
            raise ValueError("parameters.link: the link is fixed when the explainer is fitted")
        exp = self._explainer(x.reshape(1, -1).astype(np.float64), silent=True, **self._call_args(config))
        return _result(exp.values, np.asarray(exp.base_values)[0], self.feature_names, self.link)


class PermutationShapExplainer(_MaskedShap):
    """``shap.PermutationExplainer``: antithetic feature permutations, ``max_evals`` model
    evaluations (of ``background_size`` rows each) per instance; exact additivity."""

    kind = "PermutationShap"
    config_keys = ("max_evals", "background_size", "link", "seed")

    def _make(self, shap: Any, predict_fn: PredictFn, masker: Any, link: Any) -> Any:
        return shap.PermutationExplainer(predict_fn, masker, link=link, seed=int(self.config.get("seed", 0)))

    def _call_args(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"max_evals": int(config.get("max_evals", 500))}


class ExactShapExplainer(_MaskedShap):
    """``shap.ExactExplainer``: every coalition of features (2^features evaluations of
    ``background_size`` rows each), so only for a few features; exact values."""

    kind = "ExactShap"
    config_keys = ("background_size", "link", "seed")
    MAX_FEATURES = 16

    def _make(self, shap: Any, predict_fn: PredictFn, masker: Any, link: Any) -> Any:
        if len(self.feature_names) > self.MAX_FEATURES:
            raise ValueError(
                f"ExactShap evaluates 2^features coalitions; {len(self.feature_names)} features is too "
                f"many (at most {self.MAX_FEATURES}): use PermutationShap or KernelShap"
            )
        return shap.ExactExplainer(predict_fn, masker, link=link)


class TreeShapExplainer(Explainer):
    """Exact SHAP values of a tree ensemble the predictor serves (``shap.TreeExplainer``).

    It reads the model object itself (sklearn trees and forests, gradient boosting, xgboost,
    lightgbm), so it explains the predictor's own inputs: with a transformer that rewrites
    them, use KernelShap (the planner says so).
    """

    kind = "TreeShap"
    config_keys = ("model_output", "background_size", "seed")
    needs_model = True

    def load(self, artifact_dir: Path | None, predict_fn: PredictFn, model: Any = None) -> None:
        import shap

        estimator = getattr(model, "model", model)
        serves_proba = getattr(model, "method", None) == "predict_proba"
        output = self.config.get("model_output", "probability" if serves_proba else "raw")
        if output not in ("raw", "probability"):
            raise ValueError(f"config.model_output: expected 'raw' or 'probability', got {output!r}")
        background: Background | None = load_background(artifact_dir) if artifact_dir else None
        if output == "probability" and background is None:
            raise StorageError(
                "TreeShap in probability space needs background data in the explainer's storageUri "
                "(background.npy/.csv/.parquet), or config.model_output: raw"
            )
        data = None
        if background is not None:
            size = min(int(self.config.get("background_size", 100)), len(background.data))
            data = shap.sample(background.data, size, random_state=int(self.config.get("seed", 0)))
        try:
            self._explainer = shap.TreeExplainer(
                estimator,
                data=data,
                model_output=output,
                feature_perturbation="interventional" if data is not None else "tree_path_dependent",
            )
        except Exception as exc:  # noqa: BLE001 - shap says "Model type not yet supported" etc.
            raise StorageError(
                f"TreeShap cannot read the predictor's model ({type(estimator).__name__}): {exc}; "
                "use KernelShap for models that are not tree ensembles"
            ) from exc
        n = int(getattr(estimator, "n_features_in_", 0)) or (background.data.shape[1] if background else 0)
        self.feature_names = (
            background.feature_names
            if background is not None
            else [str(c) for c in getattr(estimator, "feature_names_in_", [f"feature_{i}" for i in range(n)])]
        )
        self.categorical_names = background.categorical_names if background is not None else {}
        self.model_output = output
        self.ready = True

    def explain_one(self, x: np.ndarray, config: dict[str, Any]) -> dict[str, Any]:
        if config.get("model_output", self.model_output) != self.model_output:
            raise ValueError(
                "parameters.model_output: the model output is fixed when the explainer is fitted"
            )
        values = self._explainer.shap_values(x.reshape(1, -1).astype(np.float64))
        result = _result(values, self._explainer.expected_value, self.feature_names, "identity")
        result["model_output"] = self.model_output
        return result
