"""Build the many-models example's artifacts: 25 tiny scikit-learn models, each with a known answer.

Model ``model-NN`` is a linear regression fitted on random rows of 4 features to
``y = x0 + 2·x1 + 3·x2 + 4·x3 + NN``, so it answers ``NN`` for ``[0, 0, 0, 0]`` and ``NN + 10`` for
``[1, 1, 1, 1]``: every model gives a different answer, and a request that reached the wrong one
shows. ``configs/isvc/multi-model.yaml`` lists model-00 … model-23 as TrainedModels; model-24 is
left out, for loading at run time. ``catalog.json`` maps each name to its answer at zero.

Usage::

    python scripts/build_multimodel.py artifacts/multimodel    # ~1 s; writes model-NN/model.joblib

Nothing here is committed as a binary: ``make artifacts`` and the tests run this script.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LinearRegression

N_MODELS = 25
"""model-00 … model-24."""
N_FEATURES = 4
WEIGHTS = np.arange(1.0, N_FEATURES + 1)


def model_name(i: int) -> str:
    return f"model-{i:02d}"


def build(out: Path, n_models: int = N_MODELS, seed: int = 11) -> Path:
    """Write ``out/model-NN/model.joblib`` for NN < ``n_models``, then ``out/catalog.json``."""
    rng = np.random.default_rng(seed)
    answers = {}
    for i in range(n_models):
        x = rng.normal(size=(32, N_FEATURES))
        model = LinearRegression().fit(x, x @ WEIGHTS + i)
        folder = out / model_name(i)
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, folder / "model.joblib")
        answers[model_name(i)] = float(i)
    (out / "catalog.json").write_text(json.dumps(answers, indent=1) + "\n")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, nargs="?", default=Path("artifacts/multimodel"))
    p.add_argument("--models", type=int, default=N_MODELS)
    args = p.parse_args()
    build(args.out, args.models)
    print(f"wrote {args.models} models under {args.out}")


if __name__ == "__main__":
    main()
