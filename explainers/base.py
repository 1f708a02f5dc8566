"""The one base class every explainer subclasses: ``load`` once, then ``explain`` many times.

No HTTP and no Ray: an explainer gets a ``predict_fn(array) -> array`` (whole perturbation
batches) and the local folder of its ``storageUri``. Config keys are the algorithm's own;
:meth:`Explainer.check_config` names an unknown key with the nearest valid one.

Example::

    class Constant(Explainer):
        config_keys = ("value",)

        def explain_one(self, x, config):
            return {"value": config.get("value", 0)}
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = ["Explainer", "PredictFn"]

PredictFn = Callable[[np.ndarray], np.ndarray]
"""The model as the explainer sees it: rows in, one prediction (or probability row) per row out."""


def _value(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    text = v.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return v


class Explainer:
    """Base of explainers. Override ``load`` (fit from artifacts) and ``explain_one``.

    ``config`` holds the spec's ``config`` mapping; a request's ``parameters`` override it per
    call, checked the same way.
    """

    kind: ClassVar[str] = "custom"
    config_keys: ClassVar[tuple[str, ...]] = ()
    """The algorithm's own keyword arguments that ``config`` / ``parameters`` may set."""
    aliases: ClassVar[dict[str, str]] = {}
    """Other spellings accepted for a key (e.g. KServe's ``max_samples_start``)."""

    def __init__(self, name: str, config: dict[str, Any] | None = None) -> None:
        self.name = name
        problems = self.check_config(config or {})
        if problems:
            raise ValueError("; ".join(problems))
        self.config = self.normalise(config or {})
        self.categorical_names: dict[int, list[str]] = {}
        """Categorical columns' values by column index (from the artifacts): the explainer sees
        their codes, requests send the values (see :mod:`explainers.data`)."""
        self.ready = False

    @classmethod
    def check_config(cls, config: dict[str, Any], where: str = "config") -> list[str]:
        """``where.key: unknown ...; did you mean ...?`` for each key the algorithm does not take.

        >>> from explainers.anchor import AnchorTabularExplainer
        >>> AnchorTabularExplainer.check_config({"treshold": 0.9, "max_samples_start": 10})
        ["config.treshold: unknown AnchorTabular setting; did you mean 'threshold'?"]
        """
        known = (*cls.config_keys, *cls.aliases)
        problems = []
        for key in config:
            if key not in known:
                match = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = f"; did you mean '{match[0]}'?" if match else f"; known: {', '.join(cls.config_keys)}"
                problems.append(f"{where}.{key}: unknown {cls.kind} setting{hint}")
        return problems

    @classmethod
    def normalise(cls, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with aliases replaced by the names the algorithm uses, and string values
        read as the numbers or booleans they spell (KServe's ``config`` is a string map).

        >>> Explainer.normalise({"threshold": "0.95", "seed": "1", "stop_on_first": "true", "link": "logit"})
        {'threshold': 0.95, 'seed': 1, 'stop_on_first': True, 'link': 'logit'}
        """
        return {cls.aliases.get(k, k): _value(v) for k, v in config.items()}

    text: ClassVar[bool] = False
    """Whether instances are strings (AnchorText) rather than rows of numeric features."""
    needs_model: ClassVar[bool] = False
    """Whether :meth:`load` needs the model object itself (TreeShap), not only ``predict_fn``."""

    feature_names: list[str]
    """The names of the explained features, in column order (from the artifacts)."""

    def load(self, artifact_dir: Path | None, predict_fn: PredictFn, model: Any = None) -> None:
        """Override: read background data / a saved explainer from ``artifact_dir`` and fit.

        ``model`` is the predictor's own model object, given when :attr:`needs_model` is set.
        """
        self.predict_fn = predict_fn
        self.ready = True  # pragma: no cover - overridden

    def explain(
        self, instances: np.ndarray, parameters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """One explanation per row of ``instances`` (2-D); ``parameters`` override ``config``."""
        problems = self.check_config(parameters or {}, where="parameters")
        if problems:
            raise ValueError("; ".join(problems))
        config = {**self.config, **self.normalise(parameters or {})}
        x = np.asarray(instances)
        if x.ndim != 2:
            raise ValueError(f"instances must be rows of features, got shape {list(x.shape)}")
        return [self.explain_one(row, config) for row in x]

    def explain_one(self, x: np.ndarray, config: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover
        """Override: the explanation of one instance (1-D) as a JSON-ready dict."""
        raise NotImplementedError(f"{type(self).__name__} must implement explain_one()")
