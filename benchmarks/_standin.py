"""A trivial Ray Serve app that stands in for ``configs/churn*.yaml`` while those do not exist.

One deployment, the churn transformer and model collocated, answering the two routes the
harness uses. It proves the start/ready/stop/CPU path of ``benchmarks/run.py``::

    ISVC_ARTIFACTS=$PWD/.bench/artifacts serve run benchmarks._standin:app
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

FEATURES = ("age", "tenure_days", "monthly_spend", "support_tickets", "last_login_days")


@serve.deployment(max_ongoing_requests=128)
class StandIn:
    """Scale, predict and format one V1 request in the ingress replica: no hop."""

    def __init__(self, artifacts: str | None = None) -> None:
        root = Path(artifacts or os.environ["ISVC_ARTIFACTS"])
        self._scaler = joblib.load(root / "transformer" / "scaler.pkl")
        self._model = joblib.load(root / "predictor" / "model.joblib")

    async def __call__(self, request: Request) -> JSONResponse:
        """``GET /v2/health/ready`` → 200; ``POST /v1/models/<name>:predict`` → churn predictions."""
        if request.method == "GET":
            return JSONResponse({"ready": True})
        payload: dict[str, Any] = await request.json()
        x = np.array([[float(row[f]) for f in FEATURES] for row in payload["instances"]])
        proba = self._model.predict_proba(self._scaler.transform(x))[:, 1]
        return JSONResponse({"predictions": [_format(float(p)) for p in proba]})


def _format(p: float) -> dict[str, Any]:
    """The seed transformer's postprocess for one probability."""
    tier = "HIGH" if p > 0.7 else "MEDIUM" if p > 0.3 else "LOW"
    return {"churn_probability": round(p, 4), "risk_tier": tier}


app = StandIn.bind()  # type: ignore[attr-defined]
