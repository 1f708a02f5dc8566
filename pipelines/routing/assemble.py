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
from pipelines.dataplane import Description, ModelPipeline, endpoint_tensors
from pipelines.dataplane.explanations import ExplainerModel, Explanations
from pipelines.errors import NotConfigured
from pipelines.plan import PredictorNode, ServicePlan
from pipelines.routing.sinks import ExplainerSink, LocalFirstExplainerSink, PredictorSink
from pipelines.routing.traffic import Revision, Shadow, TrafficRouter

__all__ = ["assemble", "coalesced", "explainer_front", "revisions", "served_models"]

logger = logging.getLogger("isvc.app")


def revisions(
    plan: ServicePlan, submits: list[Callable[[Any], Any]], names: list[str] | None = None
) -> tuple[list[Revision], Shadow | None]:
    """The plan's predictors as revisions: with a canary, the stable one is ``prev`` and the
    canary ``latest`` (KServe's tags), else the one predictor is ``latest``."""
    nodes = plan.predictors()
    names = names or [n.deployment for n in nodes]
    cold = [plan.cold_start_timeout_s if n.scaling.min_replicas == 0 else None for n in nodes]
    if len(nodes) == 1:
        return [Revision("latest", names[0], 100, submits[0], cold_start_s=cold[0])], None
    percent = plan.canary_traffic_percent or 0
    revs = [
        Revision("prev", names[0], 100 - percent, submits[0], cold_start_s=cold[0]),
        Revision("latest", names[1], percent, submits[1], cold_start_s=cold[1]),
    ]
    shadow = Shadow("prev", revs[1], queue_size=plan.shadow_queue) if plan.shadow else None
    return revs, shadow


async def assemble(
    plan: ServicePlan,
    make_sink: Callable[[PredictorNode], PredictorSink] | None,
    transformer: Any | None = None,
    explainer: ExplainerSink | None = None,
    router: TrafficRouter | None = None,
    describe_sink: Callable[[], PredictorSink] | None = None,
) -> ModelPipeline:
    """Wire the plan's predictors (stable, canary) behind coalescers, the router and the transformer.

    ``router`` (with ``describe_sink``, where metadata comes from) replaces the plan's own
    predictors: the ingress of a routed layout fills it from its ``user_config``. Nothing here
    calls a predictor: metadata is learnt on the first request that needs it.
    """
    sinks: list[PredictorSink] = []
    if router is None:
        assert make_sink is not None
        sinks = [make_sink(node) for node in plan.predictors()]
        revs, shadow = revisions(plan, [coalesced(plan, s) for s in sinks])
        router = TrafficRouter(revs, shadow)
    first = describe_sink or (lambda: sinks[0])

    async def describe() -> Description:
        meta = await first().metadata()
        inputs, outputs = endpoint_tensors(transformer, meta["inputs"], meta["outputs"])
        name = meta["outputs"][0]["name"] if meta["outputs"] else "output-0"
        return Description(inputs, outputs, meta["platform"], name)

    explainer_model = None
    if plan.explainer is not None:
        if explainer is None:
            raise NotConfigured(f"model '{plan.name}': spec.explainer is set but no explainer was given")
    pipeline = ModelPipeline(
        plan.name,
        predict=router.predict,
        transformer=transformer,
        version=plan.version,
        describe=describe,
        status=router.to_json,
        describe_timeout_s=plan.cold_start_timeout_s,
    )
    if plan.explainer is not None:
        assert explainer is not None

        async def inputs() -> list[dict[str, Any]]:
            await pipeline.described()
            return pipeline.inputs

        explainer_model = ExplainerModel(_explanations(plan, explainer), inputs, plan.version)
        pipeline._explain = explainer_model.explain_v1
    pipeline.explainer_model = explainer_model
    return pipeline


def coalesced(plan: ServicePlan, sink: PredictorSink) -> Callable[[Any], Any]:
    """The sink's ``predict`` behind its own coalescer (the plan's window and row cap)."""
    return Coalescer(
        sink.predict,
        window_s=plan.coalesce_window_ms / 1000,
        max_rows=plan.coalesce_max_rows,
        name=plan.name,
    ).submit


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


def explainer_front(plan: ServicePlan, runner: Any, others: Any = None) -> dict[str, Any]:
    """``{name: explainer}`` for an explainer replica that answers ``:explain`` over HTTP itself
    (its own application on ``/v1/models/{name}:explain``: no hop through the ingress).

    ``runner`` is this replica's loaded :class:`~pipelines.dataplane.explain.ExplainRunner`; when
    the explainer can have more than one replica, the instances of one request that it cannot
    take at once go to ``others`` (see :class:`~pipelines.routing.sinks.LocalFirstExplainerSink`);
    with one replica they queue here (a round trip to itself would only add a hop).
    """
    from explainers import EXPLAINERS

    node = plan.explainer
    assert node is not None
    sink = LocalFirstExplainerSink(runner, others if node.scaling.max_replicas > 1 else None)
    explanations = Explanations(plan.name, sink, EXPLAINERS[node.type], node.scaling.timeout_s)
    explanations.use_info(runner.info())
    return {plan.name: ExplainerModel(explanations, [], plan.version)}


def served_models(pipeline: ModelPipeline) -> dict[str, Any]:
    """``{name: pipeline}``, plus ``{name}-explainer`` when the model has an explainer."""
    models: dict[str, Any] = {pipeline.name: pipeline}
    if pipeline.explainer_model is not None:
        models[pipeline.explainer_model.name] = pipeline.explainer_model
    return models
