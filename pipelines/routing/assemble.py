"""The model graph from a plan, with no Ray: ``assemble(plan, make_sink)`` → :class:`ModelPipeline`.

``make_sink(node)`` gives the :class:`~pipelines.routing.sinks.PredictorSink` for a predictor
node — a Ray handle in a replica, a :class:`~pipelines.routing.sinks.LocalSink` when
collocated, a fake in tests. Each sink gets its own coalescer; the canary split sits in front.

Example::

    pipe = await assemble(plan, lambda node: LocalSink(load_predictor(plan.name, node)))
    await pipe.predict_v1({"instances": [[1, 2, 3, 4, 5]]}, headers={})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.batching import Coalescer
from pipelines.dataplane import ModelPipeline, endpoint_tensors
from pipelines.errors import NotConfigured
from pipelines.plan import PredictorNode, ServicePlan
from pipelines.routing.sinks import PredictorSink
from pipelines.routing.split import traffic_split

__all__ = ["assemble"]


async def assemble(
    plan: ServicePlan,
    make_sink: Callable[[PredictorNode], PredictorSink],
    transformer: Any | None = None,
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
    explain = None
    if plan.explainer is not None:
        kind = plan.explainer.type

        async def explain(body: dict[str, Any], headers: dict[str, str]) -> Any:
            raise NotConfigured(
                f"model '{plan.name}': spec.explainer ({kind}) is accepted, but explainer deployments "
                "are not built yet, so :explain is not served"
            )

    return ModelPipeline(
        plan.name,
        predict=predict,
        transformer=transformer,
        inputs=inputs,
        outputs=outputs,
        platform=meta["platform"],
        version=plan.version,
        output_name=meta["outputs"][0]["name"] if meta["outputs"] else "output-0",
        explain=explain,
    )
