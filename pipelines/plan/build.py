"""InferenceService → :class:`~pipelines.plan.ServicePlan`: pure, no Ray, no user code imported.

Annotations and component fields become per-deployment scaling, Kubernetes resources
become Ray actor options, runtime names become import strings, and the ingress's scaling,
collocation and every deployment name are decided here, once (see :func:`build_plan`).
The document is already validated (:mod:`pipelines.spec`); what is checked here needs
several fields at once (annotation values, replica bounds, which runtimes exist).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipelines.errors import SpecError
from pipelines.plan.annotations import (
    RAW_DEPLOYMENT,
    VERSION_NAME,
    Context,
    ann_path,
    ann_value,
    at_least_one,
    boolean,
    byte_size,
    context_of,
    duration,
    model_access,
    non_negative,
)
from pipelines.plan.nodes import (
    DEFAULT_MAX_ONGOING,
    Batching,
    ExplainerNode,
    IngressNode,
    PredictorNode,
    Resources,
    Scaling,
    ServicePlan,
    TransformerNode,
)
from pipelines.spec import (
    ANN_COALESCE_MAX_ROWS,
    ANN_COALESCE_WINDOW,
    ANN_COLD_START,
    ANN_COLLOCATE,
    ANN_EXPLAINER_MODEL,
    ANN_GPU_FRACTION,
    ANN_MAX_BODY,
    ANN_MIN_SCALE,
    ANN_SHADOW,
    ANN_SHADOW_QUEUE,
    ANN_VERSION,
    ComponentSpec,
    ExplainerSpec,
    InferenceService,
    PredictorSpec,
    ResourceRequirements,
    TransformerSpec,
    parse_cpu,
    parse_memory,
    parse_quantity,
)
from predictors.registry import RUNTIME_ALIASES

__all__ = ["build_plan"]


_REPLICA_FIELDS = ("maxReplicas", "scaleTarget", "scaleMetric")
DEFAULT_TO_ZERO_DELAY_S = 90.0
"""Idle seconds before a ``minScale: 0`` predictor goes from 1 replica to 0
(Knative's 60 s window + 30 s grace)."""
_INHERITED = (
    *("min_replicas", "max_replicas", "scale_target", "scale_metric"),
    *("container_concurrency", "timeout", "batcher"),
)
"""Component fields a canary ``newModel`` takes from the stable predictor when it leaves them unset."""


def _scaling(comp: ComponentSpec, path: str, ctx: Context, explicit: set[str] | None = None) -> Scaling:
    """Replicas and autoscaling: component fields override the Knative annotations."""
    min_r = comp.min_replicas if comp.min_replicas is not None else ctx.min_scale
    max_r = comp.max_replicas or ctx.max_scale or None  # 0 means "no limit" in Knative: unset here
    if min_r is not None and max_r is not None and max_r < min_r:
        ctx.problems.append(f"{path}: maxReplicas ({max_r}) is below minReplicas ({min_r})")
    concurrency = comp.container_concurrency
    common: dict[str, Any] = {
        "max_ongoing_requests": concurrency if concurrency else DEFAULT_MAX_ONGOING,
        "timeout_s": comp.timeout,
        "metric": comp.scale_metric or ctx.metric or Scaling.metric,
        "target_ongoing_requests": comp.scale_target or ctx.target or Scaling.target_ongoing_requests,
    }
    if ctx.mode == RAW_DEPLOYMENT:
        fields_set = comp.model_fields_set if explicit is None else explicit
        snake = {"maxReplicas": "max_replicas", "scaleTarget": "scale_target", "scaleMetric": "scale_metric"}
        ctx.ignored += [
            f"{path}.{name} (RawDeployment: fixed replicas)"
            for name in _REPLICA_FIELDS
            if snake[name] in fields_set
        ]
        replicas = min_r or 1
        return Scaling(min_replicas=replicas, max_replicas=replicas, autoscale=False, **common)
    low = min_r if min_r is not None else 1
    initial = ctx.initial_scale
    if initial is not None and initial < low:
        initial = low
    timing: dict[str, Any] = {
        "initial_replicas": initial,
        "look_back_period_s": ctx.window_s,
        "downscale_delay_s": ctx.scale_down_delay_s,
        "downscale_to_zero_delay_s": ctx.to_zero_retention_s,
    }
    if low == 0 and ctx.to_zero_retention_s is None and ctx.scale_down_delay_s is None:
        timing["downscale_to_zero_delay_s"] = DEFAULT_TO_ZERO_DELAY_S  # Knative's window + grace
    return Scaling(
        min_replicas=low, max_replicas=max(max_r or low, low, 1), autoscale=True, **common, **timing
    )


def _resources(blocks: list[ResourceRequirements | None], path: str, ctx: Context) -> Resources:
    """``requests`` first, then ``limits``; the runtime's block before the component's."""
    found: dict[str, str] = {}
    for kind in ("requests", "limits"):
        for block in blocks:
            listing = getattr(block, kind) if block is not None else None
            for key in ("cpu", "memory", "gpu"):
                value = getattr(listing, key) if listing is not None else None
                if value is not None:
                    found.setdefault(key, value)
    try:
        resources = Resources(
            num_cpus=parse_cpu(found["cpu"]) if "cpu" in found else None,
            num_gpus=parse_quantity(found["gpu"]) if "gpu" in found else None,
            memory_bytes=parse_memory(found["memory"]) if "memory" in found else None,
        )
    except ValueError as exc:
        ctx.problems.append(f"{path}.resources: {exc}")
        return Resources()
    gpus = resources.num_gpus
    if gpus is not None and gpus > 1 and not gpus.is_integer():  # Ray's own rule for num_gpus
        ctx.problems.append(
            f'{path}.resources: "nvidia.com/gpu" above 1 must be a whole number of GPUs, got {found["gpu"]!r}'
        )
    return resources


def _gpu_share(predictors: list[PredictorNode], ann: dict[str, str], ctx: Context) -> list[PredictorNode]:
    """``isvc.dev/gpu-fraction``: each predictor replica that asks for a GPU gets this share of one.

    ``nvidia.com/gpu`` stays a whole number, as Kubernetes wants; the annotation says how much
    of that GPU one Ray replica reserves (``num_gpus: 0.25``: four replicas share a GPU).
    """
    share = ann_value(ann, ANN_GPU_FRACTION, _gpu_fraction, "a fraction of one GPU, > 0 and <= 1", ctx)
    if share is None:
        return predictors
    if not any(p.resources.num_gpus for p in predictors):
        ctx.problems.append(
            f"{ann_path(ANN_GPU_FRACTION)}: no predictor asks for a GPU; "
            'set resources.limits["nvidia.com/gpu"] in spec.predictor'
        )
        return predictors
    return [
        replace(p, resources=replace(p.resources, num_gpus=share)) if p.resources.num_gpus else p
        for p in predictors
    ]


def _gpu_fraction(value: str) -> float:
    share = float(value)
    if not 0 < share <= 1:  # NaN fails too
        raise ValueError
    return share


def _predictor(
    spec: PredictorSpec,
    path: str,
    ctx: Context,
    deployment: str,
    fallback: Resources | None = None,
    explicit: set[str] | None = None,
) -> PredictorNode:
    name = spec.runtime_name
    runtime = spec.runtime
    rt_path = f"{path}.{name}"
    if name == "custom":
        fmt, import_path = "custom", spec.custom.class_path  # type: ignore[union-attr]
    else:
        fmt = spec.model.model_format.name if spec.model is not None else name
        import_path = RUNTIME_ALIASES.get(fmt, "")
        if not import_path:
            where = f"{rt_path}.modelFormat.name" if spec.model is not None else rt_path
            built = ", ".join(RUNTIME_ALIASES)
            ctx.problems.append(
                f"{where}: the '{fmt}' runtime is not built yet; available: {built}, "
                "or custom: {class: 'module:Class'} (your own predictor class)"
            )
    resources = _resources([runtime.resources, spec.resources], rt_path, ctx)
    if fallback is not None and resources == Resources():
        resources = fallback
    batching = None
    if spec.batcher is not None:
        batching = Batching(
            max_batch_size=spec.batcher.max_batch_size or Batching.max_batch_size,
            max_latency_ms=spec.batcher.max_latency or Batching.max_latency_ms,
        )
    elif resources.num_gpus:  # a GPU wants full batches: KServe's batcher defaults, unless set
        batching = Batching()
    storage_uri, args = runtime.storage_uri, runtime.args_dict()
    if fmt == "huggingface" and storage_uri and storage_uri.startswith("hf://"):
        # A Hub id, read from the local Hugging Face cache by the runtime (--model_id wins, as in KServe).
        storage_uri, args = None, {"model_id": storage_uri, **args}
    return PredictorNode(
        runtime=import_path,
        deployment=deployment,
        storage_uri=storage_uri,
        protocol=runtime.protocol_version or "v1",
        args=args,
        scaling=_scaling(spec, path, ctx, explicit),
        resources=resources,
        batching=batching,
        model_format=fmt,
        env=runtime.env_dict(),
    )


def _canary(stable: PredictorSpec, path: str, ctx: Context, stable_resources: Resources) -> PredictorNode:
    """``newModel``: component fields it leaves unset are inherited from the stable predictor."""
    assert stable.new_model is not None
    new = stable.new_model
    update = {k: getattr(stable, k) for k in _INHERITED if getattr(new, k) is None}
    merged = new.model_copy(update=update)
    return _predictor(
        merged, path, ctx, "predictor-canary", fallback=stable_resources, explicit=set(new.model_fields_set)
    )


def _transformer(spec: TransformerSpec, ctx: Context) -> TransformerNode:
    path = "spec.transformer"
    custom = spec.custom
    return TransformerNode(
        class_path=custom.class_path,
        storage_uri=custom.storage_uri,
        args=custom.args_dict(),
        scaling=_scaling(spec, path, ctx),
        resources=_resources([custom.resources, spec.resources], path, ctx),
        env=custom.env_dict(),
    )


EXPLAINER_MAX_ONGOING = 2
"""Explanations a replica holds at once unless ``containerConcurrency`` says otherwise: it runs
one at a time, so the rest wait at the handle and go to the first free replica."""


def _explainer(spec: ExplainerSpec, ctx: Context, has_transformer: bool) -> ExplainerNode:
    path = "spec.explainer"
    runtime = spec.runtime
    if runtime.args:
        ctx.ignored.append(f"{path}.{spec.kind}.args (explainer settings go in config)")
    where = f"{path}.{spec.kind}"
    from explainers import EXPLAINERS  # here: explainers imports pipelines.errors (and so this package)

    cls = EXPLAINERS.get(runtime.type)
    if cls is None:
        ctx.problems.append(
            f"{where}.type: the {runtime.type} explainer is not built yet; available: {', '.join(EXPLAINERS)}"
        )
    else:
        ctx.problems += cls.check_config(dict(runtime.config or {}), where=f"{where}.config")
    if runtime.type == "TreeShap" and has_transformer:
        ctx.problems.append(
            f"{where}.type: TreeShap reads the model and explains its own inputs, which the transformer "
            "rewrites; use KernelShap (or AnchorTabular) to explain in the request's features"
        )
    scaling = _scaling(spec, path, ctx)
    if spec.container_concurrency is None:  # one search per thread: queue at the handle instead
        scaling = replace(scaling, max_ongoing_requests=EXPLAINER_MAX_ONGOING)
    return ExplainerNode(
        kind=spec.kind,
        type=runtime.type,
        storage_uri=runtime.storage_uri,
        config=dict(runtime.config or {}),
        scaling=scaling,
        resources=_resources([runtime.resources, spec.resources], path, ctx),
        env=runtime.env_dict(),
    )


def _ingress(transformer: TransformerNode | None, predictor: PredictorNode, collocate: bool) -> IngressNode:
    """The ingress deployment: it hosts the routes and the transformer, or the predictor when collocated.

    It scales like the transformer (or, without one, like the predictor), never to zero.
    """
    scaling = transformer.scaling if transformer else predictor.scaling
    resources = transformer.resources if transformer else Resources()
    env = dict(transformer.env) if transformer else {}
    if collocate:
        resources = predictor.resources
        env = {**predictor.env, **env}
    if scaling.min_replicas < 1:
        scaling = replace(scaling, min_replicas=1, max_replicas=max(1, scaling.max_replicas))
    return IngressNode(scaling=scaling, resources=resources, env=env, collocated=collocate)


def build_plan(isvc: InferenceService) -> ServicePlan:
    """Turn a parsed InferenceService into the frozen plan :mod:`pipelines._ray` deploys.

    Raises :class:`~pipelines.errors.SpecError` listing every bad annotation or value::

        >>> from pipelines.spec import load_isvc
        >>> plan = build_plan(load_isvc("tests/fixtures/specs/good/seed_sklearn_churn.yaml"))
        >>> plan.predictor.runtime, plan.predictor.scaling.min_replicas, plan.predictor.resources.num_cpus
        ('predictors.sklearn:SKLearnPredictor', 0, 0.5)
        >>> plan.ingress.scaling.min_replicas, plan.version
        (1, '1')
    """
    ann = isvc.metadata.annotations
    ctx = context_of(ann)
    ctx.ignored = list(isvc.ignored_fields) + ctx.ignored
    pred = isvc.spec.predictor
    predictor = _predictor(pred, "spec.predictor", ctx, "predictor")
    canary = None
    notes: list[str] = []
    shadow = bool(ann_value(ann, ANN_SHADOW, boolean, '"true" or "false"', ctx))
    shadow_queue = ann_value(ann, ANN_SHADOW_QUEUE, at_least_one, "an integer >= 1", ctx)
    percent = pred.canary_traffic_percent
    if pred.new_model is not None:
        canary = _canary(pred, "spec.predictor.newModel", ctx, predictor.resources)
        if percent is None and not shadow:
            ctx.problems.append(
                "spec.predictor.newModel: needs canaryTrafficPercent (the % of traffic it gets), "
                f'or the annotation {ANN_SHADOW}: "true" to mirror traffic to it without serving any'
            )
    elif percent is not None:
        notes.append(
            f"spec.predictor.canaryTrafficPercent ({percent}) without newModel: a first create, as in "
            "KServe; all traffic goes to the one predictor (add newModel to split it)"
        )
    if shadow and pred.new_model is None:
        ctx.problems.append(
            f"{ann_path(ANN_SHADOW)}: shadow traffic needs spec.predictor.newModel "
            "(the model that gets the copies)"
        )
    predictor, *rest = _gpu_share([predictor] + ([canary] if canary else []), ann, ctx)
    canary = rest[0] if rest else None
    transformer = _transformer(isvc.spec.transformer, ctx) if isvc.spec.transformer else None
    explainer = _explainer(isvc.spec.explainer, ctx, transformer is not None) if isvc.spec.explainer else None
    access = ann_value(ann, ANN_EXPLAINER_MODEL, model_access, '"local" or "deployment"', ctx)
    if explainer is not None:
        default = "deployment" if predictor.resources.num_gpus else "local"
        explainer = replace(explainer, model_access=access or default)
    collocate = bool(ann_value(ann, ANN_COLLOCATE, boolean, '"true" or "false"', ctx))
    window = ann_value(ann, ANN_COALESCE_WINDOW, non_negative, "milliseconds >= 0 (0 disables)", ctx)
    max_rows = ann_value(ann, ANN_COALESCE_MAX_ROWS, at_least_one, "an integer >= 1", ctx)
    body = ann_value(ann, ANN_MAX_BODY, byte_size, "a size like '64Mi' or '100000000' (bytes)", ctx)
    cold = ann_value(ann, ANN_COLD_START, duration, 'a duration like "60s" or "2m"', ctx)
    if ctx.mode == RAW_DEPLOYMENT and ctx.min_scale == 0:
        notes.append(f"{ann_path(ANN_MIN_SCALE[0])}: RawDeployment never scales to zero; 1 replica at least")
    version = ann.get(ANN_VERSION, ServicePlan.version).strip()
    if not VERSION_NAME.match(version):
        ctx.problems.append(
            f"{ann_path(ANN_VERSION)}: expected a version name of letters, digits, '.', '_' or '-' "
            f"(it goes into URLs), got {version!r}"
        )
    if ctx.problems:
        raise SpecError(ctx.problems)
    return ServicePlan(
        name=isvc.metadata.name,
        namespace=isvc.metadata.namespace,
        predictor=predictor,
        ingress=_ingress(transformer, predictor, collocate),
        transformer=transformer,
        explainer=explainer,
        canary=canary,
        canary_traffic_percent=(percent or 0) if canary is not None else None,
        shadow=shadow,
        shadow_queue=ServicePlan.shadow_queue if shadow_queue is None else shadow_queue,
        cold_start_timeout_s=ServicePlan.cold_start_timeout_s if cold is None else cold,
        deployment_mode=ctx.mode,
        coalesce_window_ms=ServicePlan.coalesce_window_ms if window is None else window,
        coalesce_max_rows=ServicePlan.coalesce_max_rows if max_rows is None else max_rows,
        max_body_bytes=ServicePlan.max_body_bytes if body is None else body,
        version=version,
        ignored_fields=tuple(dict.fromkeys(ctx.ignored)),
        notes=tuple(notes),
    )
