"""The KServe transformer our users already have (``FeatureTransformer``), run by KServe itself.

Copied from the user's code with one change: the scaler path is a parameter instead of the
hard-coded ``/mnt/models/scaler.pkl``. KServe forwards ``preprocess`` output over HTTP
(V1) to ``--predictor_host``, its standard transformer → predictor hop::

    python transformer.py --model_name churn-classifier --predictor_host 127.0.0.1:8081 \
        --model_dir ART/transformer --http_port 8080 --enable_grpc false
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import kserve
from kserve import model_server

logger = logging.getLogger(__name__)


class FeatureTransformer(kserve.Model):
    """KServe Transformer: preprocesses raw API requests before sending
    to the predictor, and formats raw predictions for the client.
    """

    def __init__(self, name: str, predictor_host: str, scaler_path: str = "/mnt/models/scaler.pkl") -> None:
        super().__init__(name)
        self.predictor_host = predictor_host
        self.scaler_path = scaler_path
        self.ready = False
        self.feature_names: list[str] = [
            "age",
            "tenure_days",
            "monthly_spend",
            "support_tickets",
            "last_login_days",
        ]

    def load(self) -> bool:
        """Load preprocessing artifacts (the fitted scaler)."""
        import joblib

        try:
            self.scaler = joblib.load(self.scaler_path)
        except FileNotFoundError:
            self.scaler = None
            logger.warning("No scaler found — using raw features")
        self.ready = True
        return self.ready

    def preprocess(self, payload: dict, headers: dict[str, str] | None = None) -> dict:
        """Transform raw request into model input format."""
        instances = payload.get("instances", [])
        processed = []
        for instance in instances:
            if isinstance(instance, dict):
                features = [float(instance.get(f, 0.0)) for f in self.feature_names]
            else:
                features = [float(v) for v in instance]
            if self.scaler:
                features = self.scaler.transform([features])[0].tolist()
            processed.append(features)
        return {"instances": processed}

    def postprocess(self, response: dict, headers: dict[str, str] | None = None) -> dict:
        """Format raw model output for API consumers."""
        predictions = response.get("predictions", [])
        results = []
        for pred in predictions:
            if isinstance(pred, list):
                churn_prob = float(pred[1]) if len(pred) > 1 else float(pred[0])
            else:
                churn_prob = float(pred)
            results.append(
                {
                    "churn_probability": round(churn_prob, 4),
                    "risk_tier": "HIGH" if churn_prob > 0.7 else "MEDIUM" if churn_prob > 0.3 else "LOW",
                }
            )
        return {"predictions": results}


def main() -> None:
    """Parse KServe's standard flags (``--predictor_host`` included) plus ``--model_dir``; serve."""
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True, help="folder holding scaler.pkl")
    args, _ = parser.parse_known_args()
    model = FeatureTransformer(args.model_name, args.predictor_host, str(Path(args.model_dir) / "scaler.pkl"))
    model.load()
    kserve.ModelServer(http_port=args.http_port, enable_grpc=args.enable_grpc).start([model])


if __name__ == "__main__":
    main()
