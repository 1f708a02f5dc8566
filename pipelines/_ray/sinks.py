"""The predictor behind a Ray Serve ``DeploymentHandle``, as a :class:`~pipelines.routing.PredictorSink`."""

from __future__ import annotations

from typing import Any

from ray.serve.exceptions import BackPressureError

from pipelines.batching import Failure
from pipelines.errors import ServerOverloaded

__all__ = ["HandleSink"]


class HandleSink:
    """``handle.predict.remote(batch)``; back-pressure is a 503, a carried :class:`Failure` re-raised."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def predict(self, batch: Any) -> Any:
        try:
            result = await self.handle.predict.remote(batch)
        except BackPressureError as exc:
            raise ServerOverloaded(f"predictor overloaded: {exc}") from exc
        if isinstance(result, Failure):
            raise result.to_error()
        return result

    async def metadata(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.handle.metadata.remote()
        return result
