"""The churn example transformer: scale five features, then name the risk.

V1 in::

    {"instances": [{"age": 41, "tenure_days": 30, "monthly_spend": 120.5,
                    "support_tickets": 6, "last_login_days": 21}]}

V1 out::

    {"predictions": [{"churn_probability": 0.87, "risk_tier": "HIGH"}]}

V2 requests may carry one ``[N, 5]`` tensor or one ``[N]`` tensor per feature name.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import joblib
import numpy as np
from sklearn.preprocessing import StandardScaler

from pipelines.errors import InvalidInput
from pipelines.protocol import InferOutput, InferRequest, InferResponse, TensorSpec
from transformers_.base import Transformer

__all__ = ["ChurnTransformer", "FEATURES", "risk_tier"]

FEATURES = ["age", "tenure_days", "monthly_spend", "support_tickets", "last_login_days"]


def risk_tier(p: float) -> str:
    """``HIGH`` above 0.7, ``MEDIUM`` above 0.3, else ``LOW``."""
    return "HIGH" if p > 0.7 else "MEDIUM" if p > 0.3 else "LOW"


_values = itemgetter(*FEATURES)


def _rows(instances: list[Any]) -> np.ndarray:
    """``[N, 5]`` float64 rows from V1 instances (objects with the feature names, or lists).

    The common cases (every instance a complete object of numbers, or every one a list of
    five numbers) are one vectorized conversion; anything else goes row by row so that the
    error names the instance and field.
    """
    try:
        rows = instances if type(instances[0]) is list else [_values(inst) for inst in instances]
        x = np.array(rows, dtype=np.float64)
        if x.ndim == 2 and x.shape[1] == len(FEATURES) and np.isfinite(x).all():
            return x
    except (KeyError, TypeError, ValueError):
        pass
    return np.array([_row(i, inst) for i, inst in enumerate(instances)], dtype=np.float64)


def _row(i: int, instance: Any) -> list[float]:
    if isinstance(instance, dict):
        missing = [f for f in FEATURES if f not in instance]
        if missing:
            raise InvalidInput(f"instances[{i}] is missing {', '.join(missing)}")
        values = [instance[f] for f in FEATURES]
    elif isinstance(instance, (list, tuple)):
        if len(instance) != len(FEATURES):
            raise InvalidInput(f"instances[{i}] has {len(instance)} values, expected {len(FEATURES)}")
        values = list(instance)
    else:
        raise InvalidInput(f"instances[{i}] must be an object or a list of {len(FEATURES)} numbers")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"instances[{i}]: every feature must be a number ({exc})") from exc


_TIER_NAMES = np.array(["LOW", "MEDIUM", "HIGH"], dtype=object)


def _tiers(probs: np.ndarray) -> np.ndarray:
    """:func:`risk_tier` of every probability at once (an object array of str)."""
    return _TIER_NAMES[(probs > 0.3).astype(np.intp) + (probs > 0.7)]


class ChurnTransformer(Transformer):
    """Scales ``FEATURES`` with ``scaler.pkl`` from the transformer's ``storageUri``."""

    def load(self) -> bool:
        self.scaler = joblib.load(self.model_dir / "scaler.pkl") if self.model_dir else None
        if isinstance(self.scaler, StandardScaler):
            # Same arithmetic as StandardScaler.transform, without its per-call validation.
            self._mean = np.asarray(self.scaler.mean_, dtype=np.float64)
            self._scale = np.asarray(self.scaler.scale_, dtype=np.float64)
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 metadata: one ``[N, 5]`` tensor of the features (or one ``[N]`` tensor per feature name)."""
        return [TensorSpec("features", "FP64", [-1, len(FEATURES)])]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [TensorSpec("churn_probability", "FP64", [-1]), TensorSpec("risk_tier", "BYTES", [-1])]

    def _scale_rows(self, x: np.ndarray) -> np.ndarray:
        if not np.isfinite(x).all():
            raise InvalidInput("features must be finite numbers (got NaN or infinity)")
        if isinstance(self.scaler, StandardScaler):
            return (x - self._mean) / self._scale
        return self.scaler.transform(x) if self.scaler is not None else x

    # The hooks are ``async def`` because they do microseconds of numpy work: running them
    # inline on the event loop skips two thread hand-offs per request. A hook doing real
    # work (I/O, a tokenizer, a large frame) should stay ``def`` and run on a thread.
    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> np.ndarray:
        if isinstance(payload, InferRequest):
            return self._scale_rows(self._from_v2(payload))
        instances = payload.get("instances", payload.get("inputs"))
        if not isinstance(instances, list) or not instances:
            raise InvalidInput('"instances" must be a non-empty list')
        return self._scale_rows(_rows(instances))

    async def explain_input(self, rows: Any) -> np.ndarray:
        """An explainer's perturbed rows (``[N, 5]`` in ``FEATURES`` order) scaled at once."""
        return self._scale_rows(np.asarray(rows, dtype=np.float64))

    def _from_v2(self, request: InferRequest) -> np.ndarray:
        if len(request.inputs) == 1:
            x = np.asarray(request.inputs[0].as_numpy(), dtype=np.float64)
            if x.ndim == 1 and x.shape[0] == len(FEATURES):
                x = x.reshape(1, -1)
            if x.ndim != 2 or x.shape[1] != len(FEATURES):
                raise InvalidInput(
                    f"inputs[0] ('{request.inputs[0].name}'): expected shape [N, {len(FEATURES)}], "
                    f"got {list(x.shape)}"
                )
            return x
        names = {i.name for i in request.inputs}
        missing = [f for f in FEATURES if f not in names]
        if missing:
            raise InvalidInput(f"inputs are missing {', '.join(missing)} (one [N] tensor per feature)")
        cols = [np.asarray(request.get_input(f).as_numpy(), dtype=np.float64).reshape(-1) for f in FEATURES]
        if len({len(c) for c in cols}) != 1:
            raise InvalidInput("every feature input must have the same number of rows")
        return np.column_stack(cols)

    async def postprocess(self, response: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(response, InferResponse):
            out = response.outputs[0]
            probs = self._churn_probs(np.asarray(out.data, dtype=np.float64).reshape(out.shape))
            tiers = _tiers(probs)
            response.outputs = [
                InferOutput.from_numpy("churn_probability", probs),
                InferOutput.from_numpy("risk_tier", tiers),
            ]
            return response
        probs = self._churn_probs(np.asarray(response["predictions"], dtype=np.float64))
        return {
            "predictions": [
                {"churn_probability": p, "risk_tier": t}
                for p, t in zip(np.round(probs, 4).tolist(), _tiers(probs).tolist(), strict=True)
            ]
        }

    @staticmethod
    def _churn_probs(pred: np.ndarray) -> np.ndarray:
        """Column 1 of ``predict_proba`` output, or the values themselves."""
        return pred[:, 1] if pred.ndim == 2 and pred.shape[1] > 1 else pred.reshape(-1)
