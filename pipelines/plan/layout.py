"""The routed layout: one InferenceService as several Serve applications. Pure, no Ray.

``isvc render`` (and ``isvc apply``) write this layout so that a canary step is a light update:

- one application per predictor revision, ``{app}-predictor-{hash}`` with ``route_prefix: null``;
  the hash is of the revision's own document, so an unchanged revision keeps its name and is
  not restarted when the other side changes (Ray rebuilds an application only when its
  ``args`` change, RAY_FACTS §1);
- ``{app}-explainer-{hash}`` when there is an explainer (it explains the stable revision), on
  its own route ``/v1/models/{name}:explain`` (:func:`explainer_route`), so Ray's proxy sends
  ``:explain`` straight to an explainer replica (a promote replaces the application and
  ``:explain`` keeps being answered: ``benchmarks/rollout.py:explain_through_promote``);
- the ingress application ``{app}`` on ``/``: routes and the transformer. Its ``args`` hold no
  predictor at all; the traffic table (revisions, tags, percents, shadow) and the explainer's
  application travel in the ingress's ``user_config``, which Ray applies to running replicas
  with ``reconfigure`` — a weight change, a promote or a rollback never restarts the ingress.

>>> from pipelines.spec import load_isvc
>>> apps = routed_apps(load_isvc("configs/isvc/churn.yaml"))
>>> [a["import_path"] for a in apps]
['pipelines.app:build_predictor', 'pipelines.app:build_explainer', 'pipelines.app:build_ingress']
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from pipelines.plan.build import build_plan
from pipelines.plan.nodes import ServicePlan
from pipelines.spec import ANN_SHADOW, ANN_SHADOW_QUEUE, InferenceService, parse_isvc

__all__ = [
    "INGRESS_IMPORT",
    "explainer_route",
    "route_explainers",
    "with_direct_explainer",
    "PREDICTOR_IMPORT",
    "EXPLAINER_IMPORT",
    "ingress_plan",
    "routed_apps",
    "traffic_config",
]

PREDICTOR_IMPORT = "pipelines.app:build_predictor"
EXPLAINER_IMPORT = "pipelines.app:build_explainer"
INGRESS_IMPORT = "pipelines.app:build_ingress"

_ROUTING_ANNOTATIONS = frozenset({ANN_SHADOW, ANN_SHADOW_QUEUE})
"""Annotations that only shape the traffic table (``user_config``), kept out of every ``args``."""
_INHERITED: tuple[str, ...] = ("minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "batcher")
_INHERITED += ("containerConcurrency", "timeout")
"""What ``newModel`` takes from the stable predictor when it leaves it unset (as the planner does)."""
_PLACEHOLDER = {"sklearn": {"storageUri": "file:///isvc-routed"}}
"""The ingress plan's stand-in predictor: the ingress of a routed layout never loads a model."""


def explainer_route(prefix: str | None, name: str) -> str | None:
    """The route of a service's explainer application: its ``:explain`` URL under the service's
    prefix (``None`` when the service has no HTTP route either).

    >>> explainer_route("/", "churn"), explainer_route("/ns/churn", "churn")
    ('/v1/models/churn:explain', '/ns/churn/v1/models/churn:explain')
    """
    return None if prefix is None else _explain_path(prefix, name)


def _explain_path(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/v1/models/{name}:explain"


def route_explainers(apps: list[dict[str, Any]], prefix: str, name: str) -> dict[str, str]:
    """Put the explainer applications among ``apps`` on the service's :func:`explainer_route`
    (under its ``prefix``); their names → routes."""
    route = _explain_path(prefix, name)
    routes = {}
    for app in apps:
        if app.get("import_path") == EXPLAINER_IMPORT:
            app["route_prefix"] = routes[app["name"]] = route
    return routes


def with_direct_explainer(entry: dict[str, Any], plan: ServicePlan) -> list[dict[str, Any]]:
    """A ``pipelines.app:build`` application entry, and, when the service has an explainer, the
    explainer as its own application on :func:`explainer_route` (``args.explainer_app`` tells the
    first one where it is, so it holds no explainer replica itself).

    >>> from pipelines.spec import load_isvc
    >>> isvc = load_isvc("configs/isvc/churn.yaml")
    >>> entry = {"name": "churn", "route_prefix": "/", "import_path": "pipelines.app:build",
    ...          "args": {"isvc": isvc.to_dict()}}
    >>> [(a["name"], a["route_prefix"]) for a in with_direct_explainer(entry, build_plan(isvc))]
    [('churn', '/'), ('churn-explainer', '/v1/models/churn-classifier:explain')]
    """
    if plan.explainer is None:
        return [entry]
    name = f"{entry['name']}-explainer"
    extra = {
        k: v
        for k, v in entry.items()
        if k not in ("name", "route_prefix", "import_path", "args", "deployments")
    }
    explainer = {
        "name": name,
        "route_prefix": explainer_route(entry.get("route_prefix"), plan.name),
        "import_path": EXPLAINER_IMPORT,
        "args": {k: v for k, v in entry["args"].items() if k != "explainer_app"},
        **extra,
    }
    if plan.explainer.model_access == "deployment":  # it calls the service's predictor deployment
        explainer["args"]["predictor_app"] = entry["name"]
    return [{**entry, "args": {**entry["args"], "explainer_app": name}}, explainer]


def _digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:8]


def _metadata(doc: dict[str, Any]) -> dict[str, Any]:
    meta = copy.deepcopy(doc["metadata"])
    ann = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _ROUTING_ANNOTATIONS}
    meta.pop("annotations", None)
    if ann:
        meta["annotations"] = ann
    return meta


def _sides(predictor: dict[str, Any]) -> list[dict[str, Any]]:
    """The stable predictor's own spec, then ``newModel`` with what it inherits filled in."""
    stable = {k: v for k, v in predictor.items() if k not in ("canaryTrafficPercent", "newModel")}
    sides = [stable]
    new = predictor.get("newModel")
    if new:
        merged = copy.deepcopy(new)
        for key in _INHERITED:
            if key in stable and key not in merged:
                merged[key] = copy.deepcopy(stable[key])
        runtime = next(k for k in merged if isinstance(merged[k], dict) and k not in ("batcher", "resources"))
        stable_runtime = next(
            k for k in stable if isinstance(stable[k], dict) and k not in ("batcher", "resources")
        )
        if "resources" not in merged and "resources" not in merged[runtime]:
            if "resources" in stable:
                merged["resources"] = copy.deepcopy(stable["resources"])
            if "resources" in stable[stable_runtime]:
                merged[runtime]["resources"] = copy.deepcopy(stable[stable_runtime]["resources"])
        sides.append(merged)
    return sides


def _doc(isvc: InferenceService, spec: dict[str, Any]) -> dict[str, Any]:
    body = isvc.to_dict()
    return {"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": _metadata(body), "spec": spec}


def traffic_config(
    isvc: InferenceService, plan: ServicePlan | None = None, app_name: str | None = None
) -> dict[str, Any]:
    """The ingress's ``user_config``: revisions with tags and percents, the shadow, the explainer."""
    plan = plan or build_plan(isvc)
    base = app_name or plan.app_name
    body = isvc.to_dict()
    sides = _sides(body["spec"]["predictor"])
    apps = [f"{base}-predictor-{_digest(_doc(isvc, {'predictor': s}))}" for s in sides]
    nodes = plan.predictors()
    zero = [n.scaling.min_replicas == 0 for n in nodes]
    if len(sides) == 1:
        predictors = [{"tag": "latest", "app": apps[0], "percent": 100, "scalesToZero": zero[0]}]
    else:
        percent = plan.canary_traffic_percent or 0
        predictors = [
            {"tag": "prev", "app": apps[0], "percent": 100 - percent, "scalesToZero": zero[0]},
            {"tag": "latest", "app": apps[1], "percent": percent, "scalesToZero": zero[1]},
        ]
    config: dict[str, Any] = {"predictors": predictors}
    if plan.shadow:
        config["shadow"] = {"from": "prev", "to": "latest", "queue": plan.shadow_queue}
    if plan.explainer is not None:
        config["explainer"] = _explainer_app(isvc, base, sides[0], apps[0])[0]
    return config


def _explainer_app(
    isvc: InferenceService, base: str, stable: dict[str, Any], stable_app: str
) -> tuple[str, dict[str, Any]]:
    body = isvc.to_dict()
    spec = {
        "predictor": stable,
        **{k: body["spec"][k] for k in ("transformer", "explainer") if k in body["spec"]},
    }
    args = {"isvc": _doc(isvc, spec), "predictor_app": stable_app}
    return f"{base}-explainer-{_digest(args)}", args


def routed_apps(
    isvc: InferenceService, extra: dict[str, Any] | None = None, app_name: str | None = None
) -> list[dict[str, Any]]:
    """The Serve application entries of the routed layout (predictors, explainer, then ingress).

    ``app_name`` names the ingress application (default ``{namespace}-{name}``) and prefixes the
    others; ``extra`` (e.g. ``runtime_env``) is copied into every entry.
    """
    plan = build_plan(isvc)
    base = app_name or plan.app_name
    body = isvc.to_dict()
    skip = ("name", "route_prefix", "import_path", "args", "deployments")
    extra = {k: v for k, v in (extra or {}).items() if k not in skip}
    sides = _sides(body["spec"]["predictor"])
    config = traffic_config(isvc, plan, base)
    apps = []
    for side, entry in zip(sides, config["predictors"], strict=True):
        apps.append(
            {
                "name": entry["app"],
                "route_prefix": None,
                "import_path": PREDICTOR_IMPORT,
                "args": {"isvc": _doc(isvc, {"predictor": side})},
                **extra,
            }
        )
    if plan.explainer is not None:
        name, args = _explainer_app(isvc, base, sides[0], config["predictors"][0]["app"])
        route = explainer_route("/", plan.name)
        apps.append(
            {"name": name, "route_prefix": route, "import_path": EXPLAINER_IMPORT, "args": args, **extra}
        )
    ingress_spec = {k: body["spec"][k] for k in ("transformer", "explainer") if k in body["spec"]}
    apps.append(
        {
            "name": base,
            "route_prefix": "/",
            "import_path": INGRESS_IMPORT,
            "args": {"isvc": _doc(isvc, ingress_spec)},
            **extra,
            "deployments": [{"name": plan.ingress.name, "user_config": config}],
        }
    )
    return apps


def ingress_plan(doc: dict[str, Any]) -> ServicePlan:
    """The plan of a routed layout's ingress, from its ``args.isvc`` (a document without a predictor)."""
    doc = copy.deepcopy(doc)
    spec = doc.setdefault("spec", {})
    spec.pop("predictor", None)
    spec["predictor"] = copy.deepcopy(_PLACEHOLDER)
    return build_plan(parse_isvc(doc))
