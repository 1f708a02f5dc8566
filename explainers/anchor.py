"""AnchorTabular through alibi (imported lazily, only where an explainer loads: ~12 s).

alibi is under the Business Source License 1.1; it stays behind :class:`~explainers.base.Explainer`
so that it can be swapped. The explanation is alibi's own ``{"meta", "data"}`` JSON, as
KServe's alibi explainer returned it (``data.anchor``, ``data.precision``, ``data.coverage``, ``data.raw``).

Artifacts (the explainer's ``storageUri`` folder), first match wins:

- ``meta.dill`` + ``explainer.dill``: a folder written by ``alibi.saving.save_explainer``;
- ``explainer.dill`` alone: KServe's saved explainer (one dill of the fitted explainer);
- background data (see :mod:`explainers.data`): the explainer is fitted at load.

A saved explainer must be an AnchorTabular written by a compatible alibi (a version
mismatch is logged as a warning by alibi; a failed unpickle names the file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from explainers.base import Explainer, PredictFn
from explainers.data import load_background

__all__ = ["AnchorTabularExplainer"]

ANCHOR_KEYS = (
    *("threshold", "delta", "tau", "batch_size", "coverage_samples", "beam_size", "stop_on_first"),
    *("max_anchor_size", "min_samples_start", "n_covered_ex", "binary_cache_size", "cache_margin"),
    *("verbose", "verbose_every", "seed", "disc_perc"),
)
"""alibi 0.9.6 ``AnchorTabular.explain`` keyword arguments, plus ``seed`` and ``disc_perc`` (fit)."""


class AnchorTabularExplainer(Explainer):
    """Anchors ("support_tickets > 5 AND ...") on tabular rows, fitted on the background data."""

    kind = "AnchorTabular"
    config_keys = ANCHOR_KEYS
    aliases = {"max_samples_start": "min_samples_start"}  # KServe's misspelling, meant as this

    def load(self, artifact_dir: Path | None, predict_fn: PredictFn, model: Any = None) -> None:
        from alibi.explainers import AnchorTabular

        if artifact_dir is not None and (Path(artifact_dir) / "explainer.dill").is_file():
            self._explainer = _saved(Path(artifact_dir), predict_fn)
            self.feature_names = [str(n) for n in self._explainer.feature_names]
            saved = getattr(self._explainer, "categorical_names", None) or {}
            self.categorical_names = {int(k): [str(v) for v in vs] for k, vs in saved.items()}
            self.ready = True
            return
        background = load_background(artifact_dir)
        self.feature_names = background.feature_names
        self.categorical_names = background.categorical_names
        seed = self.config.get("seed")
        self._explainer = AnchorTabular(
            predict_fn,
            feature_names=background.feature_names,
            categorical_names=background.categorical_names or None,
            seed=None if seed is None else int(seed),
        )
        disc = self.config.get("disc_perc", (25, 50, 75))
        self._explainer.fit(background.data, disc_perc=tuple(disc))
        self.ready = True

    def explain_one(self, x: np.ndarray, config: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: v for k, v in config.items() if k not in ("seed", "disc_perc")}
        if config.get("seed") is not None:  # alibi samples with numpy's global RNG: same seed, same anchor
            np.random.seed(int(config["seed"]))
        explanation = self._explainer.explain(x, **kwargs)
        result: dict[str, Any] = json.loads(explanation.to_json())
        return result


def _saved(folder: Path, predict_fn: PredictFn) -> Any:
    """A fitted AnchorTabular from alibi's ``save_explainer`` folder or KServe's ``explainer.dill``."""
    from alibi.explainers import AnchorTabular

    from pipelines.errors import StorageError

    target = folder / ("meta.dill" if (folder / "meta.dill").is_file() else "explainer.dill")
    try:
        if target.name == "meta.dill":
            from alibi.saving import load_explainer

            explainer = load_explainer(folder, predict_fn)
        else:
            import dill

            with open(target, "rb") as f:
                explainer = dill.load(f)
            if isinstance(explainer, AnchorTabular):
                explainer.reset_predictor(predict_fn)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure names the file
        raise StorageError(
            f"{target}: cannot load the saved explainer ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(explainer, AnchorTabular):
        raise StorageError(f"{target}: holds a {type(explainer).__name__}, expected an alibi AnchorTabular")
    return explainer


class AnchorTextExplainer(Explainer):
    """Anchors on text ("great AND food"): which words hold the prediction, through alibi.

    Words are found with a spaCy tokenizer that needs nothing downloaded: ``spacy.blank(lang)``
    (config ``lang``, default ``en``), or an installed spaCy pipeline named by ``spacy_model``
    (needed for ``sampling_strategy: similarity``, which uses word vectors). The default
    ``sampling_strategy: unknown`` replaces words outside the anchor by ``UNK``. Instances are
    strings; the predictor gets arrays of perturbed strings.
    """

    kind = "AnchorText"
    text = True
    config_keys = (
        *(k for k in ANCHOR_KEYS if k != "disc_perc"),
        *("sampling_strategy", "sample_proba", "top_n", "temperature", "use_proba", "lang", "spacy_model"),
    )
    aliases = {"max_samples_start": "min_samples_start"}
    _fit_keys = (
        "seed",
        "sampling_strategy",
        "sample_proba",
        "top_n",
        "temperature",
        "use_proba",
        "lang",
        "spacy_model",
    )

    def load(self, artifact_dir: Path | None, predict_fn: PredictFn, model: Any = None) -> None:
        from alibi.explainers import AnchorText

        from pipelines.errors import StorageError

        strategy = self.config.get("sampling_strategy", "unknown")
        if strategy not in ("unknown", "similarity"):
            raise ValueError(
                f"config.sampling_strategy: expected 'unknown' or 'similarity' "
                f"(a language model is not supported here), got {strategy!r}"
            )
        nlp = _spacy(self.config.get("spacy_model"), str(self.config.get("lang", "en")))
        if strategy == "similarity" and nlp.vocab.vectors.shape[0] == 0:
            raise StorageError(
                "config.sampling_strategy: similarity needs a spaCy pipeline with word vectors "
                "(config.spacy_model, e.g. en_core_web_md, installed with `python -m spacy download`)"
            )
        sampling = {
            k: self.config[k]
            for k in ("sample_proba", "top_n", "temperature", "use_proba")
            if k in self.config
        }
        self.feature_names = []
        self._explainer = AnchorText(
            predictor=predict_fn,
            sampling_strategy=strategy,
            nlp=nlp,
            seed=int(self.config.get("seed", 0)),
            **sampling,
        )
        self.ready = True

    def explain(self, instances: Any, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        problems = self.check_config(parameters or {}, where="parameters")
        if problems:
            raise ValueError("; ".join(problems))
        config = {**self.config, **self.normalise(parameters or {})}
        texts = [str(t) for t in np.asarray(instances, dtype=object).reshape(-1)]
        return [self.explain_one(t, config) for t in texts]  # type: ignore[arg-type]

    def explain_one(self, x: Any, config: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: v for k, v in config.items() if k not in self._fit_keys}
        if config.get("seed") is not None:
            np.random.seed(int(config["seed"]))
        explanation = self._explainer.explain(str(x), **kwargs)
        result: dict[str, Any] = json.loads(explanation.to_json())
        return result


def _spacy(model: str | None, lang: str) -> Any:
    """An installed spaCy pipeline, or the blank (tokenizer-only, offline) one for ``lang``."""
    import spacy

    from pipelines.errors import StorageError

    if model:
        try:
            return spacy.load(model)
        except OSError as exc:
            raise StorageError(
                f"config.spacy_model: spaCy pipeline {model!r} is not installed here and isvc never "
                f"downloads; install it (`python -m spacy download {model}`) or leave spacy_model unset "
                f"for the offline tokenizer ({exc})"
            ) from exc
    try:
        return spacy.blank(lang)
    except (ImportError, OSError, ValueError) as exc:
        raise StorageError(f"config.lang: spaCy has no tokenizer for language {lang!r} ({exc})") from exc
