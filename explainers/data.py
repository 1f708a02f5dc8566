"""Explainer artifacts: background (training) data and optional metadata in the ``storageUri`` folder.

Layout::

    background.npy | background.csv | background.parquet   rows the explainer is fitted on
                                                            (also train.* ; exactly one)
    metadata.json                                           optional: {"feature_names": [...],
                                                            "categorical_names": {"3": ["a", "b"]}}

A CSV or Parquet file's header gives the feature names unless ``metadata.json`` does. Every
missing or malformed file is a :class:`~pipelines.errors.StorageError` naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import StorageError

__all__ = ["Background", "load_background"]

_STEMS = ("background", "train")
_SUFFIXES = (".npy", ".csv", ".parquet")


@dataclass(frozen=True)
class Background:
    """Rows (float64, 2-D), their feature names, and categorical columns' values by column index."""

    data: np.ndarray
    feature_names: list[str]
    categorical_names: dict[int, list[str]] = field(default_factory=dict)


def _read(path: Path) -> tuple[np.ndarray, list[str] | None]:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        import pandas as pd

        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        return frame.to_numpy(), [str(c) for c in frame.columns]
    except Exception as exc:  # noqa: BLE001 - any reader failure names the file
        raise StorageError(f"{path}: cannot read background data ({type(exc).__name__}: {exc})") from exc


def load_background(folder: Path | None) -> Background:
    """The background data in ``folder``; see the module docstring for the layout."""
    if folder is None:
        raise StorageError(
            "the explainer needs a storageUri holding background data (background.npy/.csv/.parquet)"
        )
    folder = Path(folder)
    found = [folder / f"{s}{x}" for s in _STEMS for x in _SUFFIXES if (folder / f"{s}{x}").is_file()]
    if not found:
        raise StorageError(f"{folder}: no background data; expected one of background.npy, .csv or .parquet")
    if len(found) > 1:
        raise StorageError(
            f"{folder}: several background files ({', '.join(p.name for p in found)}); keep one"
        )
    data, names = _read(found[0])
    try:
        rows = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StorageError(f"{found[0]}: background data must be numeric ({exc})") from exc
    if rows.ndim != 2 or len(rows) == 0:
        raise StorageError(
            f"{found[0]}: background data must be a non-empty 2-D table, got shape {list(rows.shape)}"
        )
    meta: dict[str, Any] = {}
    meta_path = folder / "metadata.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise StorageError(f"{meta_path}: not valid JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise StorageError(f"{meta_path}: expected an object with feature_names / categorical_names")
    names = meta.get("feature_names", names) or [f"feature_{i}" for i in range(rows.shape[1])]
    if not isinstance(names, list) or len(names) != rows.shape[1]:
        raise StorageError(f"{meta_path}: feature_names must list {rows.shape[1]} names (one per column)")
    raw_cats = meta.get("categorical_names", {})
    try:
        cats = {int(k): [str(v) for v in values] for k, values in raw_cats.items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise StorageError(
            f"{meta_path}: categorical_names must map column index to a list of values"
        ) from exc
    if any(not 0 <= k < rows.shape[1] for k in cats):
        raise StorageError(
            f"{meta_path}: categorical_names has a column index outside 0..{rows.shape[1] - 1}"
        )
    return Background(rows, [str(n) for n in names], cats)
