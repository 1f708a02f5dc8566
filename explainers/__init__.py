"""Explainers (Anchor via alibi, SHAP): adapters that get a ``predict_fn(np.ndarray)``."""

__all__: list[str] = []
