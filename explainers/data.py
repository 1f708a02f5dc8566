"""Explainer artifacts: background (training) data and optional metadata in the ``storageUri`` folder.

Layout::

    background.npy | background.csv | background.parquet   rows the explainer is fitted on
                                                            (also train.* ; exactly one)
    metadata.json                                           optional: {"feature_names": [...],
                                                            "categorical_names": {"3": ["a", "b"]}}

A CSV or Parquet file's header gives the feature names unless ``metadata.json`` does. Every
missing or malformed file is a :class:`~pipelines.errors.StorageError` naming it.

Categorical features: ``categorical_names`` maps a column index to its values; the explainer
works on their codes (the value's position in that list), as alibi's AnchorTabular does. A CSV or
Parquet column of strings is categorical by itself: its values are the listed ones (a value
outside the list is an error) or, unlisted, its distinct values in sorted order. A ``.npy``
holds the codes. Requests send the values themselves (:func:`encode`); a transformer's
``preprocess`` gets them back (:func:`decode`).

>>> encode("premium", ["basic", "premium"]), encode(1, ["basic", "premium"]), encode("gold", ["basic"])
(1.0, 1.0, None)
>>> decode(np.array([[3.0, 1.0], [4.0, 0.0]]), {1: ["basic", "premium"]})
[[3.0, 'premium'], [4.0, 'basic']]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import StorageError

__all__ = ["Background", "decode", "encode", "load_background"]

_STEMS = ("background", "train")
_SUFFIXES = (".npy", ".csv", ".parquet")


@dataclass(frozen=True)
class Background:
    """Rows (float64, 2-D), their feature names, and categorical columns' values by column index."""

    data: np.ndarray
    feature_names: list[str]
    categorical_names: dict[int, list[str]] = field(default_factory=dict)


def encode(value: Any, categories: list[str]) -> float | None:
    """The code of a categorical ``value``: its position among ``categories``, or the code itself
    when it is one (an integral number in range); ``None`` when it is neither."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        return float(categories.index(value)) if value in categories else None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if float(value).is_integer() and 0 <= value < len(categories):
            return float(value)
    return None


def decode(rows: np.ndarray, categories: dict[int, list[str]]) -> list[list[Any]]:
    """``rows`` as lists, with each categorical column's codes replaced by their values."""
    out: list[list[Any]] = rows.tolist()
    for row in out:
        for j, values in categories.items():
            row[j] = values[min(max(int(round(row[j])), 0), len(values) - 1)]
    return out


def _read(path: Path) -> tuple[Any, list[str] | None]:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        import pandas as pd

        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        return frame, [str(c) for c in frame.columns]
    except Exception as exc:  # noqa: BLE001 - any reader failure names the file
        raise StorageError(f"{path}: cannot read background data ({type(exc).__name__}: {exc})") from exc


def _coded(path: Path, frame: Any, listed: dict[int, list[str]]) -> tuple[Any, dict[int, list[str]]]:
    """A table's string columns as codes, and every categorical column's values."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        return frame, listed
    cats = dict(listed)
    coded = frame.copy()
    for j, column in enumerate(frame.columns):
        if pd.api.types.is_numeric_dtype(frame[column]):
            continue
        text = frame[column].astype(str)
        values = cats.setdefault(j, sorted(text.unique()))
        unknown = sorted(set(text) - set(values))
        if unknown:
            raise StorageError(
                f"{path}: column {column!r} holds {', '.join(map(repr, unknown[:3]))}, not among its "
                f"categorical_names ({', '.join(values)})"
            )
        coded[column] = text.map({v: i for i, v in enumerate(values)})
    return coded.to_numpy(), cats


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
    meta: dict[str, Any] = {}
    meta_path = folder / "metadata.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise StorageError(f"{meta_path}: not valid JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise StorageError(f"{meta_path}: expected an object with feature_names / categorical_names")
    raw_cats = meta.get("categorical_names", {})
    try:
        listed = {int(k): [str(v) for v in values] for k, values in raw_cats.items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise StorageError(
            f"{meta_path}: categorical_names must map column index to a list of values"
        ) from exc
    data, names = _read(found[0])
    data, cats = _coded(found[0], data, listed)
    try:
        rows = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StorageError(f"{found[0]}: background data must be numeric ({exc})") from exc
    if rows.ndim != 2 or len(rows) == 0:
        raise StorageError(
            f"{found[0]}: background data must be a non-empty 2-D table, got shape {list(rows.shape)}"
        )
    names = meta.get("feature_names", names) or [f"feature_{i}" for i in range(rows.shape[1])]
    if not isinstance(names, list) or len(names) != rows.shape[1]:
        raise StorageError(f"{meta_path}: feature_names must list {rows.shape[1]} names (one per column)")
    if any(not 0 <= k < rows.shape[1] for k in cats):
        raise StorageError(
            f"{meta_path}: categorical_names has a column index outside 0..{rows.shape[1] - 1}"
        )
    for j, values in cats.items():
        codes = rows[:, j]
        if not (np.equal(codes, np.round(codes)) & (codes >= 0) & (codes < len(values))).all():
            raise StorageError(
                f"{found[0]}: column {j} ({names[j]}) is categorical; its codes must be 0..{len(values) - 1}"
            )
    return Background(rows, [str(n) for n in names], cats)
