"""KServe predictor for the churn model: V1 ``predict`` returns ``predict_proba`` rows.

Runs under the ``kserve`` package (its own venv), as KServe's sklearn server would::

    python predictor.py --model_name churn-classifier --model_dir ART/predictor --http_port 8081 \
        --enable_grpc false
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import joblib
import kserve
import numpy as np
from kserve import model_server


class ChurnPredictor(kserve.Model):
    """Load ``model.joblib`` from a folder; answer ``{"instances": [[5 floats], ...]}``."""

    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.ready = False

    def load(self) -> bool:
        """Load the fitted classifier (KServe hook)."""
        self._model = joblib.load(self.model_dir / "model.joblib")
        self.ready = True
        return self.ready

    def predict(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Return one ``[p(stay), p(churn)]`` row per instance (KServe hook)."""
        x = np.asarray(payload["instances"], dtype=np.float64)
        return {"predictions": self._model.predict_proba(x).tolist()}


def main() -> None:
    """Parse KServe's standard server flags plus ``--model_dir`` and serve until signalled."""
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True, help="folder holding model.joblib")
    args, _ = parser.parse_known_args()
    model = ChurnPredictor(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer(http_port=args.http_port, enable_grpc=args.enable_grpc).start([model])


if __name__ == "__main__":
    main()
