"""Plan → bound Ray Serve application (ingress → predictor[, canary][, explainer → predictor]).

:func:`build` is the one-application layout (``serve run configs/churn.yaml``);
:func:`build_predictor`, :func:`build_explainer` and :func:`build_ingress` are the three
application kinds of the routed layout that ``isvc render`` writes (:mod:`pipelines.plan.layout`).
"""

from __future__ import annotations

import logging
from typing import Any

from pipelines._ray.deployments import (
    ExplainerAppDeployment,
    ExplainerDeployment,
    IngressDeployment,
    PredictorDeployment,
    RoutedIngressDeployment,
)
from pipelines._ray.options import deployment_options
from pipelines.errors import SpecError
from pipelines.plan import ServicePlan, build_plan
from pipelines.plan.layout import ingress_plan
from pipelines.spec import isvc_from_serve_args

__all__ = ["build", "build_app", "build_explainer", "build_ingress", "build_predictor"]

REVISION_SURGE_PERCENT = 100
"""A predictor revision's rolling update starts every replacement before stopping an old replica
(Ray's default of 0 stops first: with one replica, nothing is routable for a while)."""

logger = logging.getLogger("isvc.app")


def build_app(plan: ServicePlan, explainer_app: str | None = None) -> Any:
    """The bound Serve application for a plan; names and scaling come from the plan.

    With ``explainer_app``, the explainer is that application (``build_explainer``, on its own
    route ``/v1/models/{name}:explain``) and this one holds no explainer replica: the ingress
    reaches it by name for ``{name}-explainer`` and V2 clients."""
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
    if explainer_app is not None:
        return ingress.bind(plan, *predictors, explainer_app=explainer_app)
    ex = plan.explainer  # it explains the stable predictor: its own copy, or the deployment's handle
    explainer = ExplainerDeployment.options(
        name="explainer", **deployment_options(ex.scaling, ex.resources, env=ex.env, deployment="explainer")
    ).bind(plan, predictors[0] if predictors and ex.model_access == "deployment" else None)
    return ingress.bind(plan, *predictors, explainer=explainer)


def build(args: dict[str, Any]) -> Any:
    """Serve's ``import_path`` target: ``args`` is the InferenceService, or ``{isvc: <inline | path>}``."""
    args, explainer_app = _without(args, "explainer_app")
    plan = _plan(args)
    if explainer_app is not None and plan.explainer is None:
        raise SpecError(["args.explainer_app: the InferenceService has no spec.explainer"])
    return build_app(plan, explainer_app)


def _without(args: Any, key: str) -> tuple[Any, str | None]:
    """``args`` without ``key`` (an application name that only the builder reads), and its value."""
    if not isinstance(args, dict) or key not in args:
        return args, None
    args = dict(args)
    value = args.pop(key)
    if not isinstance(value, str) or not value:
        raise SpecError([f"args.{key}: expected the name of a Serve application, got {value!r}"])
    return args, value


def _plan(args: dict[str, Any]) -> ServicePlan:
    plan = build_plan(isvc_from_serve_args(args))
    for path in plan.ignored_fields:
        logger.info("ignored (Kubernetes-only): %s", path)
    return plan


def build_predictor(args: dict[str, Any]) -> Any:
    """One predictor revision as its own application (``route_prefix: null``); its deployment is
    ``predictor``, reached by the ingress with ``serve.get_deployment_handle``."""
    plan = _plan(args)
    node = plan.predictor
    opts = deployment_options(node.scaling, node.resources, env=node.env, deployment="predictor")
    return PredictorDeployment.options(
        name="predictor", max_surge_percent=REVISION_SURGE_PERCENT, **opts
    ).bind(plan.name, node)


def build_explainer(args: dict[str, Any]) -> Any:
    """The explainer as its own application: of the stable revision (``predictor_app``) in the
    routed layout, or beside a ``build`` application (``args.explainer_app`` names this one).

    Given ``route_prefix: /v1/models/{name}:explain``, its replicas answer ``:explain`` over HTTP
    themselves; with ``route_prefix: null`` only the ingress calls them."""
    args, predictor_app = _without(args, "predictor_app")
    plan = _plan(args)
    if plan.explainer is None:
        raise SpecError(["args.isvc.spec.explainer: required by pipelines.app:build_explainer"])
    ex = plan.explainer
    opts = deployment_options(ex.scaling, ex.resources, env=ex.env, deployment="explainer")
    return ExplainerAppDeployment.options(name="explainer", **opts).bind(plan, None, predictor_app)


def build_ingress(args: dict[str, Any]) -> Any:
    """The routes and the transformer; the traffic table comes in its ``user_config``."""
    if not isinstance(args, dict) or not isinstance(args.get("isvc"), dict):
        raise SpecError(["args.isvc: the routed ingress takes the InferenceService inline (isvc render)"])
    plan = ingress_plan(args["isvc"])
    ing = plan.ingress
    opts = deployment_options(ing.scaling, ing.resources, env=ing.env, deployment=ing.name)
    return RoutedIngressDeployment.options(name=ing.name, **opts).bind(plan)
