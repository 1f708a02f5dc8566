"""TrainedModels → the frozen multi-model plan: one :class:`ModelEntry` per model, the per-replica cap.

Pure, no Ray. The parent InferenceService goes through :func:`~pipelines.plan.build_plan` as any
other (replicas, resources, names); each TrainedModel becomes a predictor node of its own runtime
and storageUri that the multiplexed predictor replicas load on demand.

>>> from pipelines.spec.trained import load_multimodel
>>> plan = build_multimodel_plan(load_multimodel("configs/isvc/multi-model.yaml"))
>>> plan.app_name, plan.models_per_replica, plan.service.predictor.scaling.min_replicas
('ml-serving-tiny-models', 4, 2)
>>> plan.entry("model-03").node.runtime, plan.entry("model-03").node.storage_uri
('predictors.sklearn:SKLearnPredictor', 'artifacts/multimodel/model-03')
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pipelines.errors import SpecError
from pipelines.plan import PredictorNode, ServicePlan, build_plan
from pipelines.spec.trained import MultiModelService, TrainedModelSource, parse_model_source
from predictors.registry import RUNTIME_ALIASES

__all__ = ["ModelEntry", "MultiModelPlan", "build_multimodel_plan", "entry_of", "runtime_entry"]


@dataclass(frozen=True)
class ModelEntry:
    """One model of a multi-model service: what a predictor replica needs to load it.

    ``source`` is ``"spec"`` (a TrainedModel document) or ``"runtime"`` (a V2 repository ``load``
    that carried its own ``storageUri``). Entries travel with every request to the predictor, so
    any replica can load any model, including one registered after it started.
    """

    name: str
    node: PredictorNode
    framework: str
    memory_bytes: int | None = None
    source: str = "spec"

    def same_model(self, other: ModelEntry) -> bool:
        """Whether ``other`` names the same artifact with the same runtime (a repeated load)."""
        return (self.node.runtime, self.node.storage_uri, self.node.args) == (
            other.node.runtime,
            other.node.storage_uri,
            other.node.args,
        )


@dataclass(frozen=True)
class MultiModelPlan:
    """The parent's :class:`~pipelines.plan.ServicePlan`, its models and ``isvc.dev/models-per-replica``."""

    service: ServicePlan
    models: tuple[ModelEntry, ...]
    models_per_replica: int
    ignored_fields: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def app_name(self) -> str:
        return self.service.app_name

    def entry(self, name: str) -> ModelEntry:
        """The entry named ``name`` (``KeyError`` when there is none)."""
        for e in self.models:
            if e.name == name:
                return e
        raise KeyError(name)


def entry_of(
    name: str, model: TrainedModelSource, parent: PredictorNode, where: str, source: str = "spec"
) -> ModelEntry:
    """The entry for a model named ``name``: the parent's predictor node, this model's runtime and URI.

    The parent's runtime ``args`` (e.g. ``--method=predict_proba``) apply to models of the parent's
    framework; a model of another framework gets none.
    """
    fmt = model.runtime_name
    runtime = RUNTIME_ALIASES.get(fmt)
    if runtime is None:
        raise SpecError(
            [f"{where}: the '{fmt}' runtime is not built yet; available: {', '.join(RUNTIME_ALIASES)}"]
        )
    args: dict[str, Any] = dict(parent.args) if fmt == parent.model_format else {}
    node = replace(
        parent,
        runtime=runtime,
        storage_uri=model.storage_uri,
        args=args,
        model_format=fmt,
        batching=None,
    )
    return ModelEntry(name=name, node=node, framework=fmt, memory_bytes=model.memory_bytes, source=source)


def runtime_entry(name: str, parameters: Any, parent: PredictorNode) -> ModelEntry:
    """A model registered at run time from a repository ``load`` body's ``parameters``.

    >>> from pipelines.plan import PredictorNode
    >>> e = runtime_entry("m9", {"storageUri": "a/m9", "framework": "sklearn"}, PredictorNode("sklearn"))
    >>> e.source, e.node.storage_uri, e.node.runtime
    ('runtime', 'a/m9', 'predictors.sklearn:SKLearnPredictor')
    """
    src = parse_model_source(parameters, "parameters")
    return entry_of(name, src, parent, "parameters.framework", source="runtime")


def build_multimodel_plan(svc: MultiModelService) -> MultiModelPlan:
    """The parent's plan (:func:`~pipelines.plan.build_plan`) and one entry per TrainedModel."""
    service = build_plan(svc.isvc)
    problems: list[str] = []
    if service.ingress.collocated:
        problems.append(
            'metadata.annotations["isvc.dev/collocate"]: TrainedModels live in the predictor replicas, '
            "not in the ingress; remove the annotation"
        )
    entries = []
    for i, tm in enumerate(svc.models):
        where = f"TrainedModel[{i}].spec.model"
        try:
            entries.append(entry_of(tm.name, tm.spec.model, service.predictor, f"{where}.framework"))
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)
    ignored = list(service.ignored_fields) + [p for tm in svc.models for p in tm._ignored]
    if svc.isvc.spec.predictor.batcher is not None:
        ignored.append(
            "spec.predictor.batcher (many models: the ingress coalesces each model's rows instead)"
        )
    return MultiModelPlan(
        service=service,
        models=tuple(entries),
        models_per_replica=svc.models_per_replica,
        ignored_fields=tuple(dict.fromkeys(ignored)),
    )
