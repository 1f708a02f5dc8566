"""Predictor endpoints the ingress sends batches to: :class:`PredictorSink` is the protocol,
:class:`LocalSink` a predictor in this process (collocated mode, tests). The Ray handle sink
lives in :mod:`pipelines._ray`.
"""

from __future__ import annotations

from typing import Any, Protocol

from pipelines.batching import Failure, InlineOrThread, run_one
from pipelines.dataplane import predictor_metadata

__all__ = ["LocalSink", "PredictorSink"]


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
