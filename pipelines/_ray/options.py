"""Serve deployment options from a plan node's scaling, resources and env.

Ray is imported only to ask the connected cluster whether it has GPUs (:func:`cluster_gpus`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from pipelines.plan import Resources, Scaling
from pipelines.settings import GRPC_LIMIT_VAR, SERVE_ENV

__all__ = [
    "CPU_REPLICA_SELECTOR",
    "DEFAULT_NUM_CPUS",
    "POOL_LABEL",
    "SCALE_FROM_ZERO_METRICS_INTERVAL_S",
    "cluster_gpus",
    "cluster_has_grpc_limit",
    "deployment_options",
    "gpus_or_cpu",
]

logger = logging.getLogger("isvc.app")

DEFAULT_NUM_CPUS = 0.5
"""CPU share a replica reserves when the spec names none (Ray's own default is 1)."""

SCALE_FROM_ZERO_METRICS_INTERVAL_S = 1.0
"""``autoscaling_config.metrics_interval_s`` of a deployment that may scale to zero (see
:func:`deployment_options`)."""

POOL_LABEL = "isvc.dev/pool"
"""The Ray node label that keeps CPU replicas off GPU nodes: start GPU nodes with
``ray start --labels isvc.dev/pool=gpu`` (KubeRay: ``labels: {isvc.dev/pool: gpu}`` on the GPU
worker group). Ray's scheduler is free to put a CPU-only replica (ingress, explainer, a CPU
predictor) on a GPU node, where it takes CPU and memory the GPU replicas need; a node's
resources cannot say "no GPU", its labels can."""

CPU_REPLICA_SELECTOR = {POOL_LABEL: "!gpu"}
"""``ray_actor_options.label_selector`` of every replica that asks for no GPU: any node but one
labelled ``isvc.dev/pool=gpu``. A node without the label matches, so an unlabelled cluster (a
laptop's ``ray start --head``, ``serve run``) schedules everything as before."""


def cluster_has_grpc_limit(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs inside a Ray cluster started with isvc's gRPC message limit.

    Serve builds an application from a config file in a task on the cluster, whose environment
    is the one every replica of that node inherits; before ``ray.init`` (the import-path form)
    nothing is known, and the answer is no.
    """
    import ray

    env = os.environ if environ is None else environ
    return ray.is_initialized() and env.get(GRPC_LIMIT_VAR) == SERVE_ENV[GRPC_LIMIT_VAR]


def cluster_gpus() -> float | None:
    """The GPUs of the Ray cluster this process is connected to, or ``None`` when not connected.

    Serve builds an application from a config file (``serve run configs/x.yaml``, ``serve
    deploy``, ``isvc serve``) in a task on the cluster, where Ray is initialised; the
    import-path form (``serve run pipelines.app:build isvc=...``) calls the builder before
    ``ray.init``, and then nothing is known (``None``).
    """
    import ray

    if not ray.is_initialized():
        return None
    try:
        return float(ray.cluster_resources().get("GPU", 0.0))
    except Exception:  # a cluster that cannot answer: decide nothing
        logger.debug("isvc: cannot read the Ray cluster's resources", exc_info=True)
        return None


def gpus_or_cpu(
    num_gpus: float | None, available: float | None, deployment: str = "deployment"
) -> float | None:
    """``num_gpus`` to ask Ray for: ``None`` (run on CPU, one log line) when the cluster has no GPU.

    A replica asking for a GPU on a cluster without any would wait for one forever; on such a
    cluster (``available == 0``) it runs on CPU instead, and the runtime picks its CPU device.
    ``available is None`` (cluster unknown) keeps the request as it is.

    >>> gpus_or_cpu(1.0, 0.0, "predictor") is None
    True
    >>> gpus_or_cpu(1.0, 8.0), gpus_or_cpu(1.0, None), gpus_or_cpu(None, 0.0)
    (1.0, 1.0, None)
    """
    if not num_gpus or available is None or available > 0:
        return num_gpus
    logger.warning(
        "isvc: no GPU in this Ray cluster; %s asked for %g GPU and runs on CPU",
        deployment,
        num_gpus,
    )
    return None


def deployment_options(
    scaling: Scaling,
    resources: Resources,
    *,
    env: dict[str, str] | None = None,
    deployment: str | None = None,
) -> dict[str, Any]:
    """``.options(...)`` of one deployment.

    A replica gets the raised gRPC message limit in its ``runtime_env`` so that big requests
    cross the ingress → predictor hop however the cluster was started — unless the cluster
    already runs with it (:func:`cluster_has_grpc_limit`) and the node has no container ``env``:
    a replica without a ``runtime_env`` of its own can start on a warm Ray worker
    (:mod:`pipelines._ray.warm`), ~4 s sooner than on a new one. A GPU request
    is dropped, with one log line, when the connected cluster has no GPU at all
    (:func:`gpus_or_cpu`); ``deployment`` names the deployment in that line. A replica without
    a GPU stays off nodes labelled ``isvc.dev/pool=gpu`` (:data:`CPU_REPLICA_SELECTOR`).
    """
    opts: dict[str, Any] = {
        "max_ongoing_requests": scaling.max_ongoing_requests,
        "max_queued_requests": scaling.max_queued_requests,
        # One log line per request costs ~10% of the ingress CPU at 1,000 req/s.
        "logging_config": {"enable_access_log": False},
    }
    lo, hi = scaling.min_replicas, max(scaling.min_replicas, scaling.max_replicas, 1)
    if scaling.autoscale and (hi > lo or lo == 0):
        initial = scaling.initial_replicas if scaling.initial_replicas is not None else max(1, lo)
        auto: dict[str, Any] = {
            "min_replicas": lo,
            "max_replicas": hi,
            "initial_replicas": min(max(initial, lo), hi),
            "target_ongoing_requests": scaling.target_ongoing_requests,
        }
        for key in ("look_back_period_s", "downscale_delay_s", "downscale_to_zero_delay_s"):
            value = getattr(scaling, key)
            if value is not None:
                auto[key] = value
        if scaling.look_back_period_s is not None:
            # Knative scales up within its panic window (10 % of the stable window), not after 30 s.
            auto["upscale_delay_s"] = max(1.0, 0.1 * scaling.look_back_period_s)
        if lo == 0:
            # A handle records its queued requests every min(0.2 x look-back, metrics_interval_s)
            # and pushes them every metrics_interval_s (10 s by default); its immediate push
            # when a request meets zero replicas can miss that request, so the first request
            # after idle waited up to ~10 s before a replica was even asked for (measured:
            # 5.4 s). One second bounds that wait. Ray marks the field deprecated (a warning)
            # but still reads it (router.py), and the env vars it names are not read yet.
            auto["metrics_interval_s"] = SCALE_FROM_ZERO_METRICS_INTERVAL_S
        opts["autoscaling_config"] = auto
    else:
        opts["num_replicas"] = max(1, lo)
    actor: dict[str, Any] = {
        "num_cpus": resources.num_cpus if resources.num_cpus is not None else DEFAULT_NUM_CPUS
    }
    if resources.num_gpus:
        who = f"deployment {deployment!r}" if deployment else "a deployment"
        num_gpus = gpus_or_cpu(resources.num_gpus, cluster_gpus(), who)
        if num_gpus:
            actor["num_gpus"] = num_gpus
    if "num_gpus" not in actor:
        actor["label_selector"] = dict(CPU_REPLICA_SELECTOR)
    if resources.memory_bytes:
        actor["memory"] = resources.memory_bytes
    if env or not cluster_has_grpc_limit():
        actor["runtime_env"] = {"env_vars": {GRPC_LIMIT_VAR: SERVE_ENV[GRPC_LIMIT_VAR], **(env or {})}}
    opts["ray_actor_options"] = actor
    return opts
