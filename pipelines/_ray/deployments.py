"""The two Ray Serve deployments: a predictor replica and the ingress replica."""

from __future__ import annotations

import logging
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from pipelines.batching import InlineOrThread, predict_many
from pipelines.dataplane import create_app, load_predictor, load_transformer, predictor_metadata
from pipelines.plan import PredictorNode, ServicePlan
from pipelines.routing import LocalSink, PredictorSink, assemble
from pipelines.settings import slow_settings

__all__ = ["IngressDeployment", "PredictorDeployment", "PREDICTOR_MAX_BATCH"]

logger = logging.getLogger("isvc.app")

PREDICTOR_MAX_BATCH = 64
"""Calls the predictor replica merges into one model call when no ``batcher`` is set."""


def _rows(batches: list[Any]) -> int:
    """``batcher.maxBatchSize`` counts instances (rows), as KServe documents it."""
    return sum(len(b) for b in batches)


@serve.deployment
class PredictorDeployment:
    """One model runtime replica; merges concurrent callers' arrays (``@serve.batch``).

    With a ``batcher``, a merged call holds at most ``maxBatchSize`` rows (one caller's
    larger batch runs alone) and waits up to ``maxLatency`` ms to fill.
    """

    def __init__(self, name: str, node: PredictorNode) -> None:
        self.name = name
        self.predictor = load_predictor(name, node)
        self._run = InlineOrThread()
        self._max_rows = node.batching.max_batch_size if node.batching else None
        if node.batching is not None:
            self.predict_rows.set_max_batch_size(node.batching.max_batch_size)
            self.predict_rows.set_batch_wait_timeout_s(node.batching.max_latency_ms / 1000)

    async def predict(self, batch: Any) -> Any:
        """Predictions for ``batch`` (array or DataFrame), or a :class:`Failure` value."""
        if self._max_rows is None:
            return await self.predict_calls(batch)
        if len(batch) >= self._max_rows:  # already a full batch: it runs alone
            return (await self._run(predict_many, self.predictor.predict, [batch]))[0]
        return await self.predict_rows(batch)

    @serve.batch(max_batch_size=PREDICTOR_MAX_BATCH, batch_wait_timeout_s=0.0)
    async def predict_calls(self, batches: list[Any]) -> list[Any]:
        """No ``batcher``: whatever calls are waiting, merged at once."""
        return await self._run(predict_many, self.predictor.predict, batches)

    @serve.batch(max_batch_size=PREDICTOR_MAX_BATCH, batch_wait_timeout_s=0.0, batch_size_fn=_rows)
    async def predict_rows(self, batches: list[Any]) -> list[Any]:
        """``batcher``: merged calls hold at most ``maxBatchSize`` rows."""
        return await self._run(predict_many, self.predictor.predict, batches)

    def metadata(self) -> dict[str, Any]:
        return predictor_metadata(self.predictor)

    def check_health(self) -> None:
        if not self.predictor.ready:
            raise RuntimeError(f"predictor {self.name} is not ready")


@serve.deployment
@serve.ingress()
class IngressDeployment:
    """Hosts the V1/V2 routes and the transformer hooks; calls the predictor(s)."""

    async def __init__(self, plan: ServicePlan, *handles: DeploymentHandle) -> None:
        from pipelines._ray.sinks import HandleSink

        self.plan = plan
        self.transformer = await load_transformer(plan) if plan.transformer else None
        by_name = dict(zip([n.deployment for n in plan.predictors()], handles, strict=False))

        def make_sink(node: PredictorNode) -> PredictorSink:
            if plan.ingress.collocated:  # the model(s) live in this replica, no hop at all
                return LocalSink(load_predictor(plan.name, node))
            return HandleSink(by_name[node.deployment])

        self.pipeline = await assemble(plan, make_sink, self.transformer)
        slow = slow_settings()
        if slow:
            logger.warning(
                "isvc: running without its fast Ray Serve settings (%s); start with `isvc serve FILE` "
                "or `make serve`, or export them before `serve run` / `ray start` (see pipelines/serve.env)",
                "; ".join(slow),
            )
        logger.info("ingress for %s ready (collocated=%s)", plan.name, plan.ingress.collocated)

    def __serve_build_asgi_app__(self) -> Any:
        scaling = self.plan.ingress.scaling
        return create_app(
            {self.plan.name: self.pipeline},
            max_inflight=scaling.max_ongoing_requests,
            timeout_s=scaling.timeout_s,
            max_body_bytes=self.plan.max_body_bytes,
        )
