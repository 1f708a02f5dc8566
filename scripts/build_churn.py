"""Build the churn example's artifacts: a deterministic synthetic data set, a fitted
``scaler.pkl`` (transformer), ``model.joblib`` (predictor) and the explainer's background data
(``background.csv``: rows in the request's own features, the header naming them).

Usage::

    python scripts/build_churn.py artifacts/churn        # writes transformer/, predictor/, explainer/

Nothing here is committed as a binary: ``make serve`` and the tests run this script.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from transformers_.churn import FEATURES  # one feature list: the transformer's


def make_dataset(n: int = 4000, seed: int = 7) -> pd.DataFrame:
    """A synthetic churn table: long-inactive, ticket-heavy, new customers churn."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "tenure_days": rng.integers(1, 3000, n).astype(float),
            "monthly_spend": rng.gamma(3.0, 30.0, n).round(2),
            "support_tickets": rng.poisson(2.0, n).astype(float),
            "last_login_days": rng.exponential(10.0, n).round(0),
        }
    )
    logit = (
        -1.0
        + 0.35 * df["support_tickets"]
        + 0.08 * df["last_login_days"]
        - 0.0012 * df["tenure_days"]
        + 0.004 * df["monthly_spend"]
        - 0.01 * (df["age"] - 45)
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    df["churned"] = (rng.random(n) < p).astype(int)
    return df


BACKGROUND_ROWS = 400
"""Training rows the explainers are fitted on (Anchor's quantiles, SHAP's background sample)."""


def build(out: Path, seed: int = 7) -> Path:
    """Write ``data.csv``, ``transformer/``, ``predictor/``, ``predictor-v2/``, ``explainer/`` in ``out``."""
    df = make_dataset(seed=seed)
    x = df[FEATURES].to_numpy(dtype=np.float64)
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(scaler.transform(x), df["churned"])
    # The canary's "v2": a more regularised fit of the same data — mostly the same decisions,
    # different probabilities (configs/canary.yaml; shadow agreement shows how close).
    v2 = LogisticRegression(C=0.002, max_iter=1000, random_state=seed).fit(scaler.transform(x), df["churned"])
    (out / "transformer").mkdir(parents=True, exist_ok=True)
    (out / "predictor").mkdir(parents=True, exist_ok=True)
    (out / "predictor-v2").mkdir(parents=True, exist_ok=True)
    (out / "explainer").mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "data.csv", index=False)
    df[FEATURES].head(BACKGROUND_ROWS).to_csv(out / "explainer" / "background.csv", index=False)
    joblib.dump(scaler, out / "transformer" / "scaler.pkl")
    joblib.dump(model, out / "predictor" / "model.joblib")
    joblib.dump(v2, out / "predictor-v2" / "model.joblib")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="artifacts/churn", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"churn artifacts written to {build(args.out, args.seed)}")


if __name__ == "__main__":
    main()
