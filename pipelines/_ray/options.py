"""Serve deployment options from a plan node's scaling, resources and env (no Ray import)."""

from __future__ import annotations

from typing import Any

from pipelines.plan import Resources, Scaling
from pipelines.settings import GRPC_LIMIT_VAR, SERVE_ENV

__all__ = ["DEFAULT_NUM_CPUS", "deployment_options"]

DEFAULT_NUM_CPUS = 0.5
"""CPU share a replica reserves when the spec names none (Ray's own default is 1)."""


def deployment_options(
    scaling: Scaling, resources: Resources, *, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``.options(...)`` of one deployment.

    Every replica also gets the raised gRPC message limit in its ``runtime_env`` so that big
    requests cross the ingress → predictor hop however the cluster was started.
    """
    opts: dict[str, Any] = {
        "max_ongoing_requests": scaling.max_ongoing_requests,
        "max_queued_requests": scaling.max_queued_requests,
        # One log line per request costs ~10% of the ingress CPU at 1,000 req/s.
        "logging_config": {"enable_access_log": False},
    }
    lo, hi = scaling.min_replicas, max(scaling.min_replicas, scaling.max_replicas, 1)
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
    actor["runtime_env"] = {"env_vars": {GRPC_LIMIT_VAR: SERVE_ENV[GRPC_LIMIT_VAR], **(env or {})}}
    opts["ray_actor_options"] = actor
    return opts
