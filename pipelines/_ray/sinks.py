"""The predictor behind a Ray Serve ``DeploymentHandle``, as a :class:`~pipelines.routing.PredictorSink`."""

from __future__ import annotations

import asyncio
from typing import Any

from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from pipelines.batching import Failure, chunk_rows, concat
from pipelines.errors import RevisionUnavailable, ServerOverloaded

__all__ = ["HandleExplainerSink", "HandleSink", "SwitchableExplainerSink"]


class HandleSink:
    """``handle.predict.remote(batch)``; back-pressure is a 503, a carried :class:`Failure` re-raised.

    Big batches go as concurrent chunks (faster than one message, measured); Ray's gRPC message
    limit is raised as well (``pipelines/serve.env``), so a chunk of wide rows still fits.
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def predict(self, batch: Any) -> Any:
        """One call, or — for a batch over :data:`HOP_CHUNK_BYTES` — concurrent chunks, joined back."""
        parts = chunk_rows(batch)
        if len(parts) == 1:
            return await self._call(batch)
        return concat(list(await asyncio.gather(*(self._call(p) for p in parts))))

    async def _call(self, batch: Any) -> Any:
        try:
            result = await self.handle.predict.remote(batch)
        except BackPressureError as exc:
            raise ServerOverloaded(f"predictor overloaded: {exc}") from exc
        except DeploymentUnavailableError as exc:  # deleted (a promote or rollback removed it)
            raise RevisionUnavailable(f"predictor revision unavailable: {exc.message}") from exc
        if isinstance(result, Failure):
            raise result.to_error()
        return result

    async def metadata(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.handle.metadata.remote()
        return result


class SwitchableExplainerSink:
    """The explainer of a routed layout: its application comes with the ingress's ``user_config``
    and changes on a promote, so the handle behind this sink is swapped, not the sink."""

    def __init__(self) -> None:
        self.app: str | None = None
        self.sink: HandleExplainerSink | None = None

    def point_at(self, app: str) -> None:
        from ray import serve

        if app != self.app:
            handle = serve.get_deployment_handle("explainer", app, _check_exists=False)
            self.sink, self.app = HandleExplainerSink(handle), app

    def _current(self) -> HandleExplainerSink:
        if self.sink is None:
            raise RevisionUnavailable("no explainer application configured yet")
        return self.sink

    async def explain(
        self, rows: Any, parameters: dict[str, Any], as_objects: bool, timeout_s: float | None
    ) -> list[dict[str, Any]]:
        return await self._current().explain(rows, parameters, as_objects, timeout_s)

    async def info(self) -> dict[str, Any]:
        return await self._current().info()


class HandleExplainerSink:
    """``handle.explain.remote(...)``: a caller that stops waiting cancels the replica's work."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def explain(
        self, rows: Any, parameters: dict[str, Any], as_objects: bool, timeout_s: float | None
    ) -> list[dict[str, Any]]:
        response = self.handle.explain.remote(rows, parameters, as_objects, timeout_s)
        try:
            result = await response
        except asyncio.CancelledError:
            response.cancel()  # awaiting alone does not cancel a request already at a replica
            raise
        except BackPressureError as exc:
            raise ServerOverloaded(f"explainer overloaded: {exc}") from exc
        if isinstance(result, Failure):
            raise result.to_error()
        explanations: list[dict[str, Any]] = result
        return explanations

    async def info(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.handle.info.remote()
        return result
