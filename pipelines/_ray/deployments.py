"""The Ray Serve deployments: predictor replicas, the ingress replica, explainer replicas."""

from __future__ import annotations

import logging
import os
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from pipelines.batching import Failure, InlineOrThread, predict_many
from pipelines.dataplane import create_app, load_predictor, load_transformer, predictor_metadata
from pipelines.dataplane.explain import load_explainer
from pipelines.plan import PredictorNode, ServicePlan
from pipelines.routing import LocalSink, PredictorSink, assemble, served_models
from pipelines.settings import slow_settings

__all__ = ["ExplainerDeployment", "IngressDeployment", "PredictorDeployment", "PREDICTOR_MAX_BATCH"]

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


def lowest_cpu_priority() -> None:
    """Every thread of this process (and those it starts later) gets the CPU only when nothing
    else wants it: Linux ``SCHED_IDLE``, else ``nice 19``. An explainer replica does this, so on a
    shared node the CPU goes to predictions first and explanations take what is left (measured
    in ``benchmarks/explain.py``: predict p99 while explaining)."""
    tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    for tid in tids:
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):
            try:
                os.setpriority(os.PRIO_PROCESS, tid, 19)
            except OSError:
                pass


@serve.deployment
class ExplainerDeployment:
    """One explainer replica: preprocess → predictor (whole sampling batches) → explanation.

    It loads the transformer's ``preprocess`` itself, so explanations are in the caller's
    features, and calls the predictor deployment through its handle (a local copy of the
    model when the service is collocated, or when the explainer reads the model, TreeShap).
    """

    async def __init__(self, plan: ServicePlan, predictor: DeploymentHandle | None = None) -> None:
        from pipelines._ray.sinks import HandleSink

        lowest_cpu_priority()
        self.name = plan.name
        self.runner = await load_explainer(plan, HandleSink(predictor) if predictor is not None else None)
        logger.info("explainer %s for %s ready", self.runner.explainer.kind, plan.name)

    async def explain(
        self, rows: Any, parameters: dict[str, Any], as_objects: bool, timeout_s: float | None
    ) -> Any:
        """The explanations of ``rows``, or a :class:`Failure` value carrying the ISVC error."""
        try:
            return await self.runner.explain(rows, parameters, as_objects, timeout_s)
        except Exception as exc:  # noqa: BLE001 - carried back as a value
            return Failure.of(exc, "explain")

    def info(self) -> dict[str, Any]:
        return self.runner.info()

    def check_health(self) -> None:
        if not self.runner.explainer.ready:
            raise RuntimeError(f"explainer of {self.name} is not ready")


@serve.deployment
@serve.ingress()
class IngressDeployment:
    """Hosts the V1/V2 routes and the transformer hooks; calls the predictor(s) and explainer."""

    async def __init__(
        self, plan: ServicePlan, *handles: DeploymentHandle, explainer: DeploymentHandle | None = None
    ) -> None:
        from pipelines._ray.sinks import HandleExplainerSink, HandleSink

        self.plan = plan
        self.transformer = await load_transformer(plan) if plan.transformer else None
        by_name = dict(zip([n.deployment for n in plan.predictors()], handles, strict=False))

        def make_sink(node: PredictorNode) -> PredictorSink:
            if plan.ingress.collocated:  # the model(s) live in this replica, no hop at all
                return LocalSink(load_predictor(plan.name, node))
            return HandleSink(by_name[node.deployment])

        explainer_sink = HandleExplainerSink(explainer) if explainer is not None else None
        self.pipeline = await assemble(plan, make_sink, self.transformer, explainer_sink)
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
            served_models(self.pipeline),
            max_inflight=scaling.max_ongoing_requests,
            timeout_s=scaling.timeout_s,
            max_body_bytes=self.plan.max_body_bytes,
        )
