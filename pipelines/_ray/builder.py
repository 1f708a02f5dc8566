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
        name=ing.name, **deployment_options(ing.scaling, ing.resources, env=ing.env)
    )
    predictors = []
    if not ing.collocated:
        predictors = [
            PredictorDeployment.options(
                name=node.deployment, **deployment_options(node.scaling, node.resources, env=node.env)
            ).bind(plan.name, node)
            for node in plan.predictors()
        ]
    if plan.explainer is None:
        return ingress.bind(plan, *predictors)
    ex = plan.explainer
    explainer = ExplainerDeployment.options(
        name="explainer", **deployment_options(ex.scaling, ex.resources, env=ex.env)
    ).bind(plan, predictors[0] if predictors else None)  # it explains the stable predictor
    return ingress.bind(plan, *predictors, explainer=explainer)


def build(args: dict[str, Any]) -> Any:
    """Serve's ``import_path`` target: ``args`` is the InferenceService, or ``{isvc: <inline | path>}``."""
    isvc = isvc_from_serve_args(args)
    plan = build_plan(isvc)
    for path in plan.ignored_fields:
        logger.info("ignored (Kubernetes-only): %s", path)
    return build_app(plan)
