"""The Ray Serve application builder: the only module that touches Ray.

A Serve config names it as its ``import_path``::

    applications:
      - name: ml-serving-churn-classifier
        route_prefix: /
        import_path: pipelines.app:build
        args:
          isvc: configs/isvc/churn.yaml      # or the InferenceService inline

Graph: an ingress deployment hosts the V1/V2 routes and the transformer hooks; each
predictor (stable, canary) is its own deployment, called with coalesced arrays — or,
with the ``isvc.dev/collocate: "true"`` annotation, runs inside the ingress replica.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from pipelines._batching import InlineOrThread, predict_many
from pipelines._coalesce import Coalescer
from pipelines._components import load_predictor, load_transformer, predictor_metadata
from pipelines._pipeline import ModelPipeline
from pipelines._planner import build_plan
from pipelines._sinks import local_sink, remote_sink, traffic_split
from pipelines.dataplane import create_app
from pipelines.plan import PredictorNode, Resources, Scaling, ServicePlan
from pipelines.spec import isvc_from_serve_args

__all__ = ["build", "build_app", "deployment_options"]

logger = logging.getLogger("isvc.app")

DEFAULT_NUM_CPUS = 0.5
"""CPU share a replica reserves when the spec names none (Ray's own default is 1)."""

PREDICTOR_MAX_BATCH = 64
"""Calls the predictor replica merges into one model call when no ``batcher`` is set."""


def deployment_options(
    scaling: Scaling, resources: Resources, *, env: dict[str, str] | None = None, min_one: bool = False
) -> dict[str, Any]:
    """Serve deployment options from a component's scaling and resources."""
    opts: dict[str, Any] = {
        "max_ongoing_requests": scaling.max_ongoing_requests,
        "max_queued_requests": scaling.max_queued_requests,
        # One log line per request costs ~10% of the ingress CPU at 1,000 req/s.
        "logging_config": {"enable_access_log": False},
    }
    lo = max(1, scaling.min_replicas) if min_one else scaling.min_replicas
    hi = max(lo, scaling.max_replicas, 1)
    if scaling.autoscale and (hi > lo or lo == 0):
        opts["autoscaling_config"] = {
            "min_replicas": lo,
            "max_replicas": hi,
            "initial_replicas": max(1, lo),
            "target_ongoing_requests": scaling.target_ongoing_requests,
        }
    else:
        opts["num_replicas"] = max(1, lo)
    actor: dict[str, Any] = {
        "num_cpus": resources.num_cpus if resources.num_cpus is not None else DEFAULT_NUM_CPUS
    }
    if resources.num_gpus:
        actor["num_gpus"] = resources.num_gpus
    if resources.memory_bytes:
        actor["memory"] = resources.memory_bytes
    if env:
        actor["runtime_env"] = {"env_vars": dict(env)}
    opts["ray_actor_options"] = actor
    return opts


@serve.deployment
class PredictorDeployment:
    """One model runtime replica; merges concurrent callers' arrays (``@serve.batch``)."""

    def __init__(self, name: str, node: PredictorNode) -> None:
        self.name = name
        self.predictor = load_predictor(name, node)
        self._run = InlineOrThread()
        batching = node.batching
        self.predict_batched.set_max_batch_size(batching.max_batch_size if batching else PREDICTOR_MAX_BATCH)
        self.predict_batched.set_batch_wait_timeout_s(batching.max_latency_ms / 1000 if batching else 0.0)

    async def predict(self, batch: Any) -> Any:
        """Predictions for ``batch`` (array or DataFrame), or a :class:`Failure` value."""
        return await self.predict_batched(batch)

    @serve.batch(max_batch_size=PREDICTOR_MAX_BATCH, batch_wait_timeout_s=0.0)
    async def predict_batched(self, batches: list[Any]) -> list[Any]:
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

    async def __init__(
        self,
        plan: ServicePlan,
        predictor: DeploymentHandle | None = None,
        canary: DeploymentHandle | None = None,
    ) -> None:
        self.plan = plan
        self.transformer = await load_transformer(plan) if plan.transformer else None
        if predictor is None:  # collocated: the model(s) live in this replica, no hop at all
            local = load_predictor(plan.name, plan.predictor)
            sinks = [local_sink(local)]
            if plan.canary is not None:
                sinks.append(local_sink(load_predictor(plan.name, plan.canary)))
            meta = predictor_metadata(local)
        else:
            sinks = [remote_sink(predictor)] + ([remote_sink(canary)] if canary is not None else [])
            meta = await predictor.metadata.remote()
        window_s = plan.coalesce_window_ms / 1000
        coalescers = [Coalescer(s, window_s=window_s, max_rows=plan.coalesce_max_rows) for s in sinks]
        predict = traffic_split(
            coalescers[0].submit,
            coalescers[1].submit if len(coalescers) > 1 else None,
            plan.canary_traffic_percent,
        )
        self.pipeline = ModelPipeline(
            plan.name,
            predict=predict,
            transformer=self.transformer,
            inputs=meta["inputs"],
            outputs=meta["outputs"],
            platform=meta["platform"],
        )
        logger.info("ingress for %s ready (collocated=%s)", plan.name, predictor is None)

    def __serve_build_asgi_app__(self) -> Any:
        scaling = self.plan.transformer.scaling if self.plan.transformer else self.plan.predictor.scaling
        return create_app(
            {self.plan.name: self.pipeline},
            max_inflight=scaling.max_ongoing_requests,
            timeout_s=scaling.timeout_s,
        )


def build_app(plan: ServicePlan) -> Any:
    """The bound Serve application for a plan (ingress → predictor[, canary])."""
    ingress_scaling = plan.transformer.scaling if plan.transformer else plan.predictor.scaling
    ingress_resources = plan.transformer.resources if plan.transformer else Resources()
    ingress_env = dict(plan.transformer.env) if plan.transformer else {}
    if plan.collocate:
        ingress_resources = plan.predictor.resources
        ingress_env = {**plan.predictor.env, **ingress_env}
    ingress = IngressDeployment.options(
        name="ingress",
        **deployment_options(ingress_scaling, ingress_resources, env=ingress_env, min_one=True),
    )
    if plan.collocate:
        return ingress.bind(plan)
    stable = PredictorDeployment.options(
        name="predictor",
        **deployment_options(plan.predictor.scaling, plan.predictor.resources, env=plan.predictor.env),
    ).bind(plan.name, plan.predictor)
    canary = None
    if plan.canary is not None:
        canary = PredictorDeployment.options(
            name="predictor-canary",
            **deployment_options(plan.canary.scaling, plan.canary.resources, env=plan.canary.env),
        ).bind(plan.name, plan.canary)
    return ingress.bind(plan, stable, canary)


def build(args: dict[str, Any]) -> Any:
    """Serve's ``import_path`` target: ``args`` holds ``isvc`` (inline or a YAML path)."""
    isvc = isvc_from_serve_args(args, base_dir=Path.cwd())
    plan = build_plan(isvc)
    for path in plan.ignored_fields:
        logger.info("ignored (Kubernetes-only): %s", path)
    return build_app(plan)
