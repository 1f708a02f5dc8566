"""The data plane's measurements on Ray's metrics endpoint (``ray start --metrics-export-port``).

:class:`RayRecorder` is a :class:`~pipelines.dataplane.metrics.Recorder` over ``ray.util.metrics``;
:func:`install` makes it the replica's recorder (the ingress and predictor deployments call it in
their constructors). Ray prefixes every name with ``ray_``; the names are KServe's where KServe
has one:

- ``request_preprocess_seconds``, ``request_predict_seconds``, ``request_postprocess_seconds``,
  ``request_explain_seconds`` (histograms, ``model_name``), as KServe's model server exports them;
- ``isvc_requests_total`` (counter, ``model_name``, ``endpoint``, ``status``) and
  ``isvc_request_seconds`` (histogram, ``model_name``, ``endpoint``);
- ``isvc_coalesced_rows`` (rows per predictor call the ingress sends) and
  ``isvc_predictor_batch_rows`` (rows per model call in a predictor replica), histograms.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from pipelines.dataplane.metrics import STAGES, recorder, set_recorder

__all__ = ["FLUSH_S", "ROW_BOUNDARIES", "SECONDS_BOUNDARIES", "RayRecorder", "install"]

FLUSH_S = 1.0
"""How often request counts summed in the replica go to Ray's counter."""

SECONDS_BOUNDARIES = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
]  # fmt: skip
"""Latency buckets: sub-millisecond model calls up to explanations of a minute or two."""

ROW_BOUNDARIES = [float(2**i) for i in range(17)]
"""Row-count buckets: 1, 2, 4, ... 65536."""

ROW_METRICS = {"coalesced": "isvc_coalesced_rows", "predictor_batch": "isvc_predictor_batch_rows"}


class RayRecorder:
    """Records into Ray's metrics, one set per process, cheaply: tags dicts are made once per label
    set, histogram points go straight to Ray's recorder (:func:`_record_of`), and request counts
    are summed here and added to Ray's counter every :data:`FLUSH_S` (Ray exports every few
    seconds anyway; a replica that stops loses at most that last second)."""

    def __init__(self) -> None:
        from ray.util.metrics import Counter, Histogram

        model = ("model_name",)
        self._stages = {
            stage: _record_of(
                Histogram(
                    f"request_{stage}_seconds",
                    description=f"Time of the {stage} stage of a request, in seconds (successful stages)",
                    boundaries=SECONDS_BOUNDARIES,
                    tag_keys=model,
                )
            )
            for stage in STAGES
        }
        self._requests = Counter(
            "isvc_requests",
            description="Requests answered, by model, endpoint and HTTP status",
            tag_keys=("model_name", "endpoint", "status"),
        )
        self._latency = _record_of(
            Histogram(
                "isvc_request_seconds",
                description="Time from a request's arrival at the ingress to its response, in seconds",
                boundaries=SECONDS_BOUNDARIES,
                tag_keys=("model_name", "endpoint"),
            )
        )
        self._rows = {
            kind: _record_of(
                Histogram(
                    name,
                    description=f"Rows per predictor call ({kind})",
                    boundaries=ROW_BOUNDARIES,
                    tag_keys=model,
                )
            )
            for kind, name in ROW_METRICS.items()
        }
        self._model_tags: dict[str, dict[str, str]] = {}
        self._request_tags: dict[tuple[str, str, int], tuple[dict[str, str], dict[str, str]]] = {}
        self._pending: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()
        self._armed = False

    def _tags(self, model: str) -> dict[str, str]:
        tags = self._model_tags[model] = {"model_name": model}
        return tags

    def observe(self, stage: str, model: str, seconds: float) -> None:
        self._stages[stage](seconds, self._model_tags.get(model) or self._tags(model))

    def count(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        key = (model, endpoint, status)
        tags = self._request_tags.get(key)
        if tags is None:
            tags = self._request_tags[key] = (
                {"model_name": model, "endpoint": endpoint, "status": str(status)},
                {"model_name": model, "endpoint": endpoint},
            )
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1
        if not self._armed:
            self._arm()
        self._latency(seconds, tags[1])

    def rows(self, kind: str, model: str, n: int) -> None:
        self._rows[kind](n, self._model_tags.get(model) or self._tags(model))

    def _arm(self) -> None:
        try:
            asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
            self._armed = True
        except RuntimeError:  # no event loop here: add at once
            self.flush()

    def flush(self) -> None:
        """Add the request counts summed since the last flush to Ray's counter."""
        self._armed = False
        with self._lock:
            pending, self._pending = self._pending, {}
        for key, n in pending.items():  # n >= 1: a Ray Counter refuses increments <= 0
            self._requests.inc(n, self._request_tags[key][0])


def _record_of(histogram: Any) -> Callable[[float, dict[str, str]], None]:
    """``histogram.observe`` without ray.util.metrics' checks of the tags on every call (half of its
    cost): the tags here are complete, all strings, and made once. The public method where Ray's
    histogram has no such inner metric (``tests/_ray/test_metrics.py`` tells when that changes)."""
    inner = getattr(histogram, "_metric", None)
    if inner is None or getattr(histogram, "_default_tags", None) or not hasattr(inner, "record"):
        return histogram.observe  # type: ignore[no-any-return]
    return inner.record  # type: ignore[no-any-return]


def install() -> Any:
    """Make a :class:`RayRecorder` this process's recorder, once (later calls keep the first)."""
    current = recorder()
    if not isinstance(current, RayRecorder):
        current = RayRecorder()
        set_recorder(current)
    return current
