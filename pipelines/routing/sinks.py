"""Predictor endpoints the ingress sends batches to: :class:`PredictorSink` is the protocol,
:class:`LocalSink` a predictor in this process (collocated mode, tests). Explainers likewise:
:class:`ExplainerSink`, and :class:`LocalExplainerSink` over a runner in this process. The Ray
handle sinks live in :mod:`pipelines._ray`.
"""

from __future__ import annotations

from typing import Any, Protocol

from pipelines.batching import Failure, InlineOrThread, run_one
from pipelines.dataplane import predictor_metadata

__all__ = ["ExplainerSink", "LocalExplainerSink", "LocalFirstExplainerSink", "LocalSink", "PredictorSink"]


class PredictorSink(Protocol):
    """One predictor as the ingress sees it."""

    async def predict(self, batch: Any) -> Any:
        """Predictions for ``batch``; an error is raised as the matching ISVC error."""

    async def metadata(self) -> dict[str, Any]:
        """``{"inputs", "outputs", "platform"}`` of the loaded predictor."""


class LocalSink:
    """A loaded predictor in this process: ``predict`` on a worker thread, or inline once proven short.

    Example::

        sink = LocalSink(load_predictor("churn", plan.predictor))
        out = await sink.predict(np.zeros((4, 5)))
    """

    def __init__(self, predictor: Any, runner: InlineOrThread | None = None) -> None:
        self.predictor = predictor
        self._run = runner or InlineOrThread()

    async def predict(self, batch: Any) -> Any:
        result = await self._run(run_one, self.predictor.predict, batch)
        if isinstance(result, Failure):
            raise result.to_error()
        return result

    async def metadata(self) -> dict[str, Any]:
        return predictor_metadata(self.predictor)


class ExplainerSink(Protocol):
    """One explainer deployment as the ingress sees it."""

    async def explain(
        self, rows: Any, parameters: dict[str, Any], as_objects: bool, timeout_s: float | None
    ) -> list[dict[str, Any]]:
        """One explanation per row (rows in the caller's features); errors raised as ISVC errors."""

    async def info(self) -> dict[str, Any]:
        """``{"type", "feature_names"}`` once the explainer is loaded."""


class LocalExplainerSink:
    """An :class:`~pipelines.dataplane.explain.ExplainRunner` in this process (tests, benchmarks)."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    async def explain(
        self, rows: Any, parameters: dict[str, Any], as_objects: bool, timeout_s: float | None
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.runner.explain(rows, parameters, as_objects, timeout_s)
        return result

    async def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self.runner.info()
        return result


class LocalFirstExplainerSink(LocalExplainerSink):
    """An explainer replica that answers ``:explain`` itself: an explanation runs on this
    replica's runner when it is idle, else goes to ``others`` (the explainer deployment's own
    handle, which spreads the instances of one request over every replica).

    ``others`` is a sink, or a callable that makes one when first needed.
    """

    def __init__(self, runner: Any, others: Any = None) -> None:
        super().__init__(runner)
        self._others = others
        self.busy = 0

    def _other(self) -> Any:
        if callable(self._others) and not hasattr(self._others, "explain"):
            self._others = self._others()
        return self._others

    async def explain(
        self, rows: Any, parameters: dict[str, Any], as_objects: bool, timeout_s: float | None
    ) -> list[dict[str, Any]]:
        if self.busy and self._others is not None:
            result: list[dict[str, Any]] = await self._other().explain(
                rows, parameters, as_objects, timeout_s
            )
            return result
        self.busy += 1
        try:
            return await super().explain(rows, parameters, as_objects, timeout_s)
        finally:
            self.busy -= 1
