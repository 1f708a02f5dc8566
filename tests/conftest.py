"""Shared fixtures: the churn artifacts, trained into a temporary folder per session."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build_churn_module():
    spec = importlib.util.spec_from_file_location("build_churn", ROOT / "scripts" / "build_churn.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def churn_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/transformer/scaler.pkl`` and ``<tmp>/predictor/model.joblib``, built by the script."""
    return _build_churn_module().build(tmp_path_factory.mktemp("churn"))
