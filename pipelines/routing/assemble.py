"""The model graph from a plan, with no Ray: ``assemble(plan, make_sink)`` → :class:`ModelPipeline`.

``make_sink(node)`` gives the :class:`~pipelines.routing.sinks.PredictorSink` for a predictor
node — a Ray handle in a replica, a :class:`~pipelines.routing.sinks.LocalSink` when
collocated, a fake in tests. Each sink gets its own coalescer; the canary split sits in front.
With ``spec.explainer``, ``explainer`` (an :class:`~pipelines.routing.sinks.ExplainerSink`)
serves ``:explain`` and the V2 model ``{name}-explainer``; :func:`served_models` lists both.

Example::

    pipe = await assemble(plan, lambda node: LocalSink(load_predictor(plan.name, node)))
    await pipe.predict_v1({"instances": [[1, 2, 3, 4, 5]]}, headers={})
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pipelines.batching import Coalescer
from pipelines.dataplane import ModelPipeline, endpoint_tensors
from pipelines.dataplane.explanations import ExplainerModel, Explanations
from pipelines.errors import NotConfigured
from pipelines.plan import PredictorNode, ServicePlan
from pipelines.routing.sinks import ExplainerSink, PredictorSink
from pipelines.routing.split import traffic_split

__all__ = ["assemble", "served_models"]

logger = logging.getLogger("isvc.app")


async def assemble(
    plan: ServicePlan,
    make_sink: Callable[[PredictorNode], PredictorSink],
    transformer: Any | None = None,
    explainer: ExplainerSink | None = None,
) -> ModelPipeline:
    """Wire the plan's predictors (stable, canary) behind coalescers, the split and the transformer."""
    sinks = [make_sink(node) for node in plan.predictors()]
    meta = await sinks[0].metadata()
    window_s = plan.coalesce_window_ms / 1000
    coalescers = [Coalescer(s.predict, window_s=window_s, max_rows=plan.coalesce_max_rows) for s in sinks]
    predict = traffic_split(
        coalescers[0].submit,
        coalescers[1].submit if len(coalescers) > 1 else None,
        plan.canary_traffic_percent,
    )
    inputs, outputs = endpoint_tensors(transformer, meta["inputs"], meta["outputs"])
    explainer_model = None
    if plan.explainer is not None:
        if explainer is None:
            raise NotConfigured(f"model '{plan.name}': spec.explainer is set but no explainer was given")
        explainer_model = ExplainerModel(_explanations(plan, explainer), inputs, plan.version)
    pipeline = ModelPipeline(
        plan.name,
        predict=predict,
        transformer=transformer,
        inputs=inputs,
        outputs=outputs,
        platform=meta["platform"],
        version=plan.version,
        output_name=meta["outputs"][0]["name"] if meta["outputs"] else "output-0",
        explain=explainer_model.explain_v1 if explainer_model else None,
    )
    pipeline.explainer_model = explainer_model
    return pipeline


def _explanations(plan: ServicePlan, sink: ExplainerSink) -> Explanations:
    """The ingress side of the explainer; it becomes ready when the explainer answers ``info``."""
    from explainers import EXPLAINERS

    node = plan.explainer
    assert node is not None
    explanations = Explanations(plan.name, sink, EXPLAINERS[node.type], node.scaling.timeout_s)

    async def wait_ready() -> None:
        while True:
            try:
                await explanations.wait_ready()
                return
            except Exception as exc:  # noqa: BLE001 - keep asking; predictions are served meanwhile
                logger.warning("explainer of %s not answering yet: %s", plan.name, exc)
                await asyncio.sleep(1.0)

    explanations.ready_task = asyncio.ensure_future(wait_ready())  # kept: a task needs a reference
    return explanations


def served_models(pipeline: ModelPipeline) -> dict[str, Any]:
    """``{name: pipeline}``, plus ``{name}-explainer`` when the model has an explainer."""
    models: dict[str, Any] = {pipeline.name: pipeline}
    if pipeline.explainer_model is not None:
        models[pipeline.explainer_model.name] = pipeline.explainer_model
    return models
