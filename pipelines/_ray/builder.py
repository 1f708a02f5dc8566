"""Plan → bound Ray Serve application (ingress → predictor[, canary][, explainer → predictor])."""

from __future__ import annotations

import logging
from typing import Any

from pipelines._ray.deployments import ExplainerDeployment, IngressDeployment, PredictorDeployment
from pipelines._ray.options import deployment_options
from pipelines.plan import ServicePlan, build_plan
from pipelines.spec import isvc_from_serve_args

__all__ = ["build", "build_app"]

logger = logging.getLogger("isvc.app")


def build_app(plan: ServicePlan) -> Any:
    """The bound Serve application for a plan; names and scaling come from the plan."""
    ing = plan.ingress
    ingress = IngressDeployment.options(
        name=ing.name, **deployment_options(ing.scaling, ing.resources, env=ing.env, deployment=ing.name)
    )
    predictors = []
    if not ing.collocated:
        predictors = [
            PredictorDeployment.options(
                name=node.deployment,
                **deployment_options(node.scaling, node.resources, env=node.env, deployment=node.deployment),
            ).bind(plan.name, node)
            for node in plan.predictors()
        ]
    if plan.explainer is None:
        return ingress.bind(plan, *predictors)
    ex = plan.explainer  # it explains the stable predictor: its own copy, or the deployment's handle
    explainer = ExplainerDeployment.options(
        name="explainer", **deployment_options(ex.scaling, ex.resources, env=ex.env, deployment="explainer")
    ).bind(plan, predictors[0] if predictors and ex.model_access == "deployment" else None)
    return ingress.bind(plan, *predictors, explainer=explainer)


def build(args: dict[str, Any]) -> Any:
    """Serve's ``import_path`` target: ``args`` is the InferenceService, or ``{isvc: <inline | path>}``."""
    isvc = isvc_from_serve_args(args)
    plan = build_plan(isvc)
    for path in plan.ignored_fields:
        logger.info("ignored (Kubernetes-only): %s", path)
    return build_app(plan)
