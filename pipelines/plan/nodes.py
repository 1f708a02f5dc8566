"""The IR between an InferenceService document and Ray: frozen dataclasses, no Ray.

:func:`~pipelines.plan.build_plan` turns a parsed :class:`pipelines.spec.InferenceService`
into a :class:`ServicePlan`; only :mod:`pipelines._ray` turns a plan into Ray Serve deployments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Scaling",
    "Resources",
    "Batching",
    "PredictorNode",
    "TransformerNode",
    "ExplainerNode",
    "IngressNode",
    "ServicePlan",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_ONGOING",
]

DEFAULT_MAX_ONGOING = 256
"""Ingress/predictor ``max_ongoing_requests`` when ``containerConcurrency`` is unset
(Ray's own default of 5 collapses throughput at 32+ connections)."""

DEFAULT_MAX_BODY_BYTES = 64 * 2**20
"""Request bodies larger than this answer 413 unless ``isvc.dev/max-body-size`` raises it."""

DEFAULT_MAX_QUEUED = 1024
"""Requests a deployment queues before answering 503."""


@dataclass(frozen=True)
class Scaling:
    """Replica count and autoscaling of one deployment.

    ``autoscale`` False means a fixed ``min_replicas`` (RawDeployment);
    True maps to Ray's ``autoscaling_config``.
    """

    min_replicas: int = 1
    max_replicas: int = 1
    autoscale: bool = False
    target_ongoing_requests: float = 2.0
    metric: str = "concurrency"
    max_ongoing_requests: int = DEFAULT_MAX_ONGOING
    max_queued_requests: int = DEFAULT_MAX_QUEUED
    timeout_s: float | None = None
    initial_replicas: int | None = None
    """``autoscaling.knative.dev/initial-scale``: replicas at deploy time (default: ``max(1, min)``)."""
    look_back_period_s: float | None = None
    """``autoscaling.knative.dev/window``: how far back the autoscaler averages the load."""
    downscale_delay_s: float | None = None
    """``autoscaling.knative.dev/scale-down-delay``: load must stay low this long before a scale-down."""
    downscale_to_zero_delay_s: float | None = None
    """``autoscaling.knative.dev/scale-to-zero-pod-retention-period``: idle time before 1 → 0."""


@dataclass(frozen=True)
class Resources:
    """What one replica asks Ray for (``ray_actor_options``)."""

    num_cpus: float | None = None
    num_gpus: float | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class Batching:
    """``predictor.batcher``: dynamic batching inside the predictor replica."""

    max_batch_size: int = 32
    max_latency_ms: float = 5.0


@dataclass(frozen=True)
class PredictorNode:
    """One model runtime: ``runtime`` is an import string ``module:Class``."""

    runtime: str
    deployment: str = "predictor"
    """Serve deployment name (``predictor``, ``predictor-canary``)."""
    storage_uri: str | None = None
    protocol: str = "v1"
    args: dict[str, Any] = field(default_factory=dict)
    scaling: Scaling = field(default_factory=Scaling)
    resources: Resources = field(default_factory=Resources)
    batching: Batching | None = None
    model_format: str = "custom"
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables for the replica (the spec's ``env``); e.g. Ray ``runtime_env.env_vars``."""


@dataclass(frozen=True)
class TransformerNode:
    """A user transformer class (``custom.class``) hosted in the ingress replica."""

    class_path: str
    storage_uri: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    scaling: Scaling = field(default_factory=Scaling)
    resources: Resources = field(default_factory=Resources)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExplainerNode:
    """An explainer (alibi/shap) configuration."""

    kind: str
    type: str
    storage_uri: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    scaling: Scaling = field(default_factory=Scaling)
    resources: Resources = field(default_factory=Resources)
    env: dict[str, str] = field(default_factory=dict)
    model_access: str = "local"
    """``isvc.dev/explainer-model``: ``local`` — the explainer replica loads its own copy of the
    (CPU) model and calls it in-process; ``deployment`` — it calls the predictor deployment's
    handle with each sampling batch (the default for a GPU predictor)."""


@dataclass(frozen=True)
class IngressNode:
    """The ingress deployment: V1/V2 routes and the transformer hooks (and the predictor, collocated)."""

    name: str = "ingress"
    scaling: Scaling = field(default_factory=Scaling)
    resources: Resources = field(default_factory=Resources)
    env: dict[str, str] = field(default_factory=dict)
    collocated: bool = False
    """``isvc.dev/collocate``: the predictor(s) run inside the ingress replica, no hop."""


@dataclass(frozen=True)
class ServicePlan:
    """Everything :mod:`pipelines.app` needs to build one Serve application."""

    name: str
    namespace: str
    predictor: PredictorNode
    ingress: IngressNode = field(default_factory=IngressNode)
    transformer: TransformerNode | None = None
    explainer: ExplainerNode | None = None
    canary: PredictorNode | None = None
    canary_traffic_percent: int | None = None
    deployment_mode: str = "Serverless"
    coalesce_window_ms: float = 1.0
    coalesce_max_rows: int = 1024
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """``isvc.dev/max-body-size``: larger request bodies answer 413."""
    version: str = "1"
    """``isvc.dev/model-version``: the model version in V2 metadata, URLs and responses."""
    shadow: bool = False
    """``isvc.dev/shadow``: every request the stable predictor serves is mirrored to ``newModel``."""
    shadow_queue: int = 64
    """``isvc.dev/shadow-queue``: mirrored batches waiting at most; more are dropped (and counted)."""
    cold_start_timeout_s: float = 60.0
    """``isvc.dev/cold-start-timeout``: how long a request waits for a predictor scaled to zero."""
    ignored_fields: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """What ``isvc validate`` tells the user about the plan (accepted, but worth knowing)."""

    @property
    def app_name(self) -> str:
        """Serve application name, ``{namespace}-{name}``."""
        return f"{self.namespace}-{self.name}"

    @property
    def collocate(self) -> bool:
        """Whether the predictor(s) run inside the ingress replica."""
        return self.ingress.collocated

    def predictors(self) -> list[PredictorNode]:
        """The stable predictor, then the canary when there is one."""
        return [self.predictor] + ([self.canary] if self.canary is not None else [])
