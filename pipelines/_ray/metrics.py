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

from typing import Any

from pipelines.dataplane.metrics import STAGES, recorder, set_recorder

__all__ = ["ROW_BOUNDARIES", "SECONDS_BOUNDARIES", "RayRecorder", "install"]

SECONDS_BOUNDARIES = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
]  # fmt: skip
"""Latency buckets: sub-millisecond model calls up to explanations of a minute or two."""

ROW_BOUNDARIES = [float(2**i) for i in range(17)]
"""Row-count buckets: 1, 2, 4, ... 65536."""

ROW_METRICS = {"coalesced": "isvc_coalesced_rows", "predictor_batch": "isvc_predictor_batch_rows"}


class RayRecorder:
    """Records into Ray's metrics (one set per process; tags dicts are made once per label set)."""

    def __init__(self) -> None:
        from ray.util.metrics import Counter, Histogram

        model = ("model_name",)
        self._stages = {
            stage: Histogram(
                f"request_{stage}_seconds",
                description=f"Time of the {stage} stage of a request, in seconds (successful stages)",
                boundaries=SECONDS_BOUNDARIES,
                tag_keys=model,
            )
            for stage in STAGES
        }
        self._requests = Counter(
            "isvc_requests",
            description="Requests answered, by model, endpoint and HTTP status",
            tag_keys=("model_name", "endpoint", "status"),
        )
        self._latency = Histogram(
            "isvc_request_seconds",
            description="Time from a request's arrival at the ingress to its response, in seconds",
            boundaries=SECONDS_BOUNDARIES,
            tag_keys=("model_name", "endpoint"),
        )
        self._rows = {
            kind: Histogram(
                name,
                description=f"Rows per predictor call ({kind})",
                boundaries=ROW_BOUNDARIES,
                tag_keys=model,
            )
            for kind, name in ROW_METRICS.items()
        }
        self._model_tags: dict[str, dict[str, str]] = {}
        self._request_tags: dict[tuple[str, str, int], tuple[dict[str, str], dict[str, str]]] = {}

    def _tags(self, model: str) -> dict[str, str]:
        tags = self._model_tags.get(model)
        if tags is None:
            tags = self._model_tags[model] = {"model_name": model}
        return tags

    def observe(self, stage: str, model: str, seconds: float) -> None:
        self._stages[stage].observe(seconds, self._tags(model))

    def count(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        key = (model, endpoint, status)
        tags = self._request_tags.get(key)
        if tags is None:
            tags = self._request_tags[key] = (
                {"model_name": model, "endpoint": endpoint, "status": str(status)},
                {"model_name": model, "endpoint": endpoint},
            )
        self._requests.inc(1, tags[0])
        self._latency.observe(seconds, tags[1])

    def rows(self, kind: str, model: str, n: int) -> None:
        self._rows[kind].observe(n, self._tags(model))


def install() -> Any:
    """Make a :class:`RayRecorder` this process's recorder, once (later calls keep the first)."""
    current = recorder()
    if not isinstance(current, RayRecorder):
        current = RayRecorder()
        set_recorder(current)
    return current
