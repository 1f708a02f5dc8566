"""InferenceServices on a running Ray cluster: apply, read back, delete — the logic shared by
``isvc apply / get / delete`` (:mod:`pipelines.cli.control`) and the SDK's ``KServeClient``
(:mod:`pipelines.sdk`). This module is pure (documents in, Serve config out); the status is
:mod:`pipelines.control.status` and the calls to the cluster :mod:`pipelines.control.plane`.

What is deployed is the routed layout (:mod:`pipelines.plan.layout`): per InferenceService an
application per predictor revision, the explainer's, and the ingress ``{namespace}-{name}``
whose ``ingress`` deployment carries the traffic table in its ``user_config``. Ray's dashboard
takes the **whole** desired Serve state in one ``PUT``; so applying one InferenceService
re-declares, unchanged, every application that belongs to something else (another
InferenceService, any other Serve app), and replaces only the applications of this one.

**The stored document.** The InferenceService exactly as it was last applied (the user's
document, after a ``patch`` its merge) is kept in the cluster itself: in the ingress
deployment's ``user_config`` under :data:`STORED_KEY`, beside the traffic table, with
``metadata.creationTimestamp`` and ``metadata.generation`` added. A ``user_config`` change is
applied to the running replica by ``reconfigure`` (the ingress ignores that key), so storing it
never restarts anything, whereas an extra key in ``args`` would rebuild the ingress on every
canary step. Services deployed without it (``isvc render | serve deploy``) are read back from
their applications' ``args`` instead (:func:`derived_document`).

**Revisions, as KServe's Knative mode has them.** A predictor with ``canaryTrafficPercent: P``
and no ``newModel`` (KServe's own way: edit the predictor, set the percent) keeps the
previously rolled-out predictor — read back from the cluster — at ``100 - P`` and gives the
new spec ``P`` (:func:`resolve_revisions`): the document rendered has ``stable = the rolled-out
predictor``, ``newModel = the new spec``. The rolled-out predictor is the revision holding
100 % of the traffic, else the ``prev`` one. A spec equal to the rolled-out one is one revision
at 100 %; a first create with a percent is one revision at 100 % (as KServe).

**Several services on one Serve instance.** Every ingress of the routed layout asks for
``route_prefix: /``, and Ray allows a prefix once; the first InferenceService on a cluster gets
``/`` and each next one ``/{namespace}/{name}`` (its URLs are under that prefix, and
``status.url`` says so). An application keeps its prefix on every later apply.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.control.documents import (
    API_VERSION,
    KIND,
    merge_patch,
    read_documents,
    strip_server_metadata,
)
from pipelines.errors import SpecError
from pipelines.plan.layout import INGRESS_IMPORT, _sides, route_explainers
from pipelines.spec import ANN_SHADOW, ANN_SHADOW_QUEUE, parse_isvc

__all__ = [
    "API_VERSION",
    "KIND",
    "STORED_KEY",
    "ApplyResult",
    "ControlError",
    "Deployed",
    "NotFound",
    "apply_config",
    "delete_config",
    "deployed_document",
    "group_services",
    "merge_patch",
    "read_documents",
    "resolve_revisions",
    "rolled_out_predictor",
]

STORED_KEY = "inferenceService"
"""The key of the stored InferenceService document in the ingress deployment's ``user_config``."""
SINGLE_IMPORT = "pipelines.app:build"
MULTIMODEL_IMPORT = "pipelines.app:build_multimodel"
INGRESS_DEPLOYMENT = "ingress"
DEFAULT_HTTP_HOST = "0.0.0.0"
DEFAULT_HTTP_PORT = 8000
HTTP_HOST_ENV, HTTP_PORT_ENV = "ISVC_HTTP_HOST", "ISVC_HTTP_PORT"
"""Where Serve listens when isvc starts it (Serve not running yet); a running Serve keeps its own."""


class ControlError(RuntimeError):
    """The request cannot be carried out as asked (the message says why); not a cluster failure."""


class NotFound(ControlError):
    """No such InferenceService on the cluster."""


# ---------------------------------------------------------------------------------------------
# What is deployed


def _config(app: Mapping[str, Any]) -> dict[str, Any]:
    return dict(app.get("deployed_app_config") or {})


def app_document(app: Mapping[str, Any]) -> dict[str, Any] | None:
    """The InferenceService document in an isvc application's ``args`` (None for other apps)."""
    cfg = _config(app)
    if not str(cfg.get("import_path", "")).startswith("pipelines.app:"):
        return None
    args = cfg.get("args")
    if not isinstance(args, dict):
        return None
    if isinstance(args.get("isvc"), dict):
        return dict(args["isvc"])
    if "spec" in args and "metadata" in args:
        return dict(args)
    return None


def _key(doc: Mapping[str, Any]) -> tuple[str, str]:
    meta = doc.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name"))


def ingress_user_config(app: Mapping[str, Any]) -> dict[str, Any]:
    for dep in _config(app).get("deployments") or []:
        if dep.get("name") == INGRESS_DEPLOYMENT and isinstance(dep.get("user_config"), dict):
            return dict(dep["user_config"])
    return {}


@dataclass
class Deployed:
    """One InferenceService as the cluster runs it: its applications (Serve's details)."""

    namespace: str
    name: str
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    ingress: str | None = None
    layout: str = "routed"
    """``routed`` (isvc apply / render), ``single`` (``pipelines.app:build``), ``multimodel``."""

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def ingress_app(self) -> dict[str, Any]:
        return self.apps.get(self.ingress or "", {})

    @property
    def user_config(self) -> dict[str, Any]:
        return ingress_user_config(self.ingress_app) if self.layout == "routed" else {}

    @property
    def table(self) -> list[dict[str, Any]]:
        """The traffic table: ``[{tag, app, percent, scalesToZero}]`` (routed layout)."""
        return list(self.user_config.get("predictors") or [])

    @property
    def stored(self) -> dict[str, Any] | None:
        doc = self.user_config.get(STORED_KEY)
        return copy.deepcopy(doc) if isinstance(doc, dict) else None

    @property
    def route_prefix(self) -> str | None:
        prefix = self.ingress_app.get("route_prefix") or _config(self.ingress_app).get("route_prefix")
        return str(prefix) if prefix else None


def group_services(apps: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], Deployed]:
    """The InferenceServices among Serve's applications, by ``(namespace, name)``.

    Membership is read from each application's own ``args.isvc.metadata`` (every app of the
    routed layout carries its service's metadata); applications of anything else are not listed.
    """
    found: dict[tuple[str, str], Deployed] = {}
    for app_name, app in apps.items():
        doc = app_document(app)
        if doc is None:
            continue
        key = _key(doc)
        svc = found.setdefault(key, Deployed(*key))
        svc.apps[app_name] = dict(app)
        import_path = _config(app).get("import_path")
        if import_path == INGRESS_IMPORT:
            svc.ingress, svc.layout = app_name, "routed"
        elif import_path in (SINGLE_IMPORT, MULTIMODEL_IMPORT):
            svc.ingress = app_name
            svc.layout = "single" if import_path == SINGLE_IMPORT else "multimodel"
    return {k: v for k, v in sorted(found.items()) if v.ingress is not None}


def _predictor_of(app: Mapping[str, Any]) -> dict[str, Any] | None:
    doc = app_document(app) or {}
    pred = (doc.get("spec") or {}).get("predictor")
    return copy.deepcopy(pred) if isinstance(pred, dict) else None


def derived_document(svc: Deployed) -> dict[str, Any] | None:
    """The InferenceService a deployed service runs, read from its applications' ``args``
    (for services deployed without a stored document, e.g. ``isvc render | serve deploy``)."""
    ingress_doc = app_document(svc.ingress_app)
    if ingress_doc is None:
        return None
    if svc.layout != "routed":
        return copy.deepcopy(ingress_doc)
    doc = copy.deepcopy(ingress_doc)
    spec = dict(doc.get("spec") or {})
    sides = [(e, _predictor_of(svc.apps.get(str(e.get("app")), {}))) for e in svc.table]
    if not sides or sides[0][1] is None:
        return None
    predictor = dict(sides[0][1] or {})
    if len(sides) > 1 and sides[1][1] is not None:
        predictor["canaryTrafficPercent"] = int(float(sides[1][0].get("percent", 0)))
        predictor["newModel"] = sides[1][1]
    spec["predictor"] = predictor
    doc["spec"] = spec
    shadow = svc.user_config.get("shadow")
    if shadow:
        meta = doc.setdefault("metadata", {})
        ann = meta.setdefault("annotations", {})
        ann[ANN_SHADOW] = "true"
        if "queue" in shadow:
            ann[ANN_SHADOW_QUEUE] = str(shadow["queue"])
    return doc


def deployed_document(svc: Deployed) -> dict[str, Any] | None:
    """The stored document (the last one applied), else one read from the applications."""
    return svc.stored or derived_document(svc)


def rolled_out_predictor(svc: Deployed | None) -> dict[str, Any] | None:
    """The predictor spec last rolled out: the revision with 100 % of the traffic, else ``prev``."""
    if svc is None:
        return None
    if svc.layout != "routed":
        doc = app_document(svc.ingress_app) or {}
        pred = dict((doc.get("spec") or {}).get("predictor") or {})
        if not pred:
            return None
        sides = _sides(pred)
        promoted = len(sides) > 1 and int(pred.get("canaryTrafficPercent") or 0) >= 100
        return copy.deepcopy(sides[1] if promoted else sides[0])
    table = svc.table
    if not table:
        return None
    entry = table[0]
    if len(table) > 1 and float(table[-1].get("percent", 0)) >= 100:
        entry = table[-1]
    return _predictor_of(svc.apps.get(str(entry.get("app")), {}))


def _normalized_predictor(doc: Mapping[str, Any], predictor: Mapping[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": doc.get("apiVersion", API_VERSION),
        "kind": KIND,
        "metadata": {"name": _key(doc)[1], "namespace": _key(doc)[0]},
        "spec": {"predictor": dict(predictor)},
    }
    pred: dict[str, Any] = parse_isvc(body).to_dict()["spec"]["predictor"]
    return pred


def resolve_revisions(doc: Mapping[str, Any], rolled_out: Mapping[str, Any] | None) -> dict[str, Any]:
    """The document to render: KServe's ``canaryTrafficPercent`` without ``newModel`` becomes
    ``stable = rolled_out`` + ``newModel = the new spec`` (see the module doc).

    >>> doc = {"metadata": {"name": "m"}, "spec": {"predictor": {
    ...     "canaryTrafficPercent": 20, "sklearn": {"storageUri": "s3://b/v2"}}}}
    >>> out = resolve_revisions(doc, {"sklearn": {"storageUri": "s3://b/v1"}})["spec"]["predictor"]
    >>> out["sklearn"], out["canaryTrafficPercent"], out["newModel"]
    ({'storageUri': 's3://b/v1'}, 20, {'sklearn': {'storageUri': 's3://b/v2'}})
    """
    out = strip_server_metadata(doc)
    pred = dict((out.get("spec") or {}).get("predictor") or {})
    if "canaryTrafficPercent" not in pred or pred.get("newModel") or not rolled_out:
        return out
    percent = pred.pop("canaryTrafficPercent")
    stable = _normalized_predictor(out, rolled_out)
    new = _normalized_predictor(out, pred)
    if _sides({**stable, "newModel": new})[1] == stable:  # the spec rolled out: one revision
        out["spec"]["predictor"] = pred
        return out
    out["spec"]["predictor"] = {**stable, "canaryTrafficPercent": percent, "newModel": pred}
    return out


# ---------------------------------------------------------------------------------------------
# Building the whole Serve config


def now_rfc3339(now: float | None = None) -> str:
    moment = _dt.datetime.fromtimestamp(time.time() if now is None else now, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _comparable(app: Mapping[str, Any]) -> str:
    keys = ("name", "route_prefix", "import_path", "args", "runtime_env", "deployments")
    return json.dumps({k: app.get(k) or None for k in keys}, sort_keys=True, default=str)


@dataclass
class ApplyResult:
    """One applied InferenceService: what became of it and the document now stored."""

    namespace: str
    name: str
    action: str
    """``created``, ``configured`` or ``unchanged`` (as ``kubectl apply`` says)."""
    stored: dict[str, Any]
    apps: list[dict[str, Any]]
    route_prefix: str

    @property
    def table(self) -> list[dict[str, Any]]:
        for app in self.apps:
            if app.get("import_path") == INGRESS_IMPORT:
                return ingress_user_config({"deployed_app_config": app}).get("predictors") or []
        return []


def default_http_options(
    host: str | None = None, port: int | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    env = os.environ if env is None else env
    return {
        "host": host or env.get(HTTP_HOST_ENV) or DEFAULT_HTTP_HOST,
        "port": int(port or env.get(HTTP_PORT_ENV) or DEFAULT_HTTP_PORT),
    }


def serve_running(details: Mapping[str, Any]) -> bool:
    return bool(details.get("controller_info")) and bool(details.get("http_options"))


def _base_config(details: Mapping[str, Any], http_options: Mapping[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "proxy_location": details.get("proxy_location") or "EveryNode",
        "http_options": dict(details["http_options"])
        if serve_running(details)
        else dict(http_options or default_http_options()),
    }
    if details.get("grpc_options") and serve_running(details):
        config["grpc_options"] = dict(details["grpc_options"])
    if details.get("target_capacity") is not None:
        config["target_capacity"] = details["target_capacity"]
    return config


def _kept(apps: Mapping[str, Mapping[str, Any]], drop: set[str]) -> list[dict[str, Any]]:
    kept = []
    for name, app in apps.items():
        if name in drop:
            continue
        cfg = _config(app)
        if not cfg:
            if app.get("status") == "DELETING":
                continue
            raise ControlError(
                f"Serve application {name!r} was deployed with serve.run (no declarative config); "
                "one PUT of the whole Serve config cannot keep it. Deploy it from a config file, or "
                "delete it first"
            )
        kept.append(cfg)
    return kept


def apply_config(
    details: Mapping[str, Any],
    items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
    http_options: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> tuple[dict[str, Any], list[ApplyResult]]:
    """The whole Serve config that applies ``items`` (``(Serve entry, InferenceService doc)``)
    over what ``details`` (Serve's instance details) runs, and what becomes of each service.
    Pure: no I/O. Raises SpecError for an invalid document."""
    from pipelines.cli.commands import render_serve_config

    apps: dict[str, dict[str, Any]] = dict(details.get("applications") or {})
    deployed = group_services(apps)
    todo = [(dict(extra), copy.deepcopy(dict(doc))) for extra, doc in items]
    problems: list[str] = []
    keys = []
    for i, (_, doc) in enumerate(todo):
        try:
            keys.append(_key({"metadata": parse_isvc(strip_server_metadata(doc)).to_dict()["metadata"]}))
        except SpecError as exc:
            name = (doc.get("metadata") or {}).get("name", f"document {i}")
            problems += [f"{name}: {line}" for line in exc.problems]
    if problems:
        raise SpecError(problems)
    if len(set(keys)) != len(keys):
        raise SpecError(
            [f"{ns}/{n}: given twice" for ns, n in sorted({k for k in keys if keys.count(k) > 1})]
        )
    replaced = {a for k in keys if k in deployed for a in deployed[k].apps}
    new_apps: list[dict[str, Any]] = []
    results: list[ApplyResult] = []
    prefixes = {  # application → route prefix, of what stays
        n: str(_config(a).get("route_prefix") or a.get("route_prefix"))
        for n, a in apps.items()
        if n not in replaced and (_config(a).get("route_prefix") or a.get("route_prefix"))
    }
    for (extra, doc), key in zip(todo, keys, strict=True):
        previous = deployed.get(key)
        rendered_doc = resolve_revisions(doc, rolled_out_predictor(previous))
        isvc = parse_isvc(rendered_doc)
        config = render_serve_config([(extra, isvc)], layout="routed")
        svc_apps = [dict(a) for a in config["applications"]]
        ingress = svc_apps[-1]
        taken = {p for n, p in prefixes.items() if n != ingress["name"]}  # a same-named app is replaced
        prefix = (previous.route_prefix if previous else None) or ("/" if "/" not in taken else None)
        prefix = prefix or f"/{key[0]}/{key[1]}"
        if prefix in taken:
            raise ControlError(f"{key[0]}/{key[1]}: route prefix {prefix} is taken by another application")
        prefixes[ingress["name"]] = prefix
        ingress["route_prefix"] = prefix
        prefixes.update(route_explainers(svc_apps, prefix, isvc.metadata.name))
        stored = strip_server_metadata(doc)
        old_meta = dict(((previous.stored if previous else None) or {}).get("metadata") or {})
        stored["metadata"]["creationTimestamp"] = old_meta.get("creationTimestamp") or now_rfc3339(now)
        generation = int(old_meta.get("generation") or 0)

        def stamp(gen: int, ingress: dict[str, Any] = ingress, stored: dict[str, Any] = stored) -> None:
            stored["metadata"]["generation"] = gen
            if ingress.get("import_path") == INGRESS_IMPORT:
                for dep in ingress.get("deployments") or []:
                    if dep.get("name") == INGRESS_DEPLOYMENT:
                        dep["user_config"] = {**dep.get("user_config", {}), STORED_KEY: stored}

        stamp(max(generation, 1))
        before = sorted(_comparable(_config(a)) for a in (previous.apps.values() if previous else []))
        if previous is None:
            action = "created"
        elif before == sorted(_comparable(a) for a in svc_apps):
            action = "unchanged"
        else:
            action = "configured"
            stamp(generation + 1)
        new_apps += svc_apps
        results.append(ApplyResult(key[0], key[1], action, copy.deepcopy(stored), svc_apps, prefix))
    new_names = {a["name"] for a in new_apps}
    kept = _kept(apps, replaced | new_names)
    full = {**_base_config(details, http_options), "applications": kept + new_apps}
    return full, results


def delete_config(details: Mapping[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """The whole Serve config without the applications of ``namespace/name`` (NotFound if none)."""
    apps: dict[str, dict[str, Any]] = dict(details.get("applications") or {})
    svc = group_services(apps).get((namespace, name))
    if svc is None:
        raise NotFound(f'inferenceservices.serving.kserve.io "{name}" not found in namespace {namespace!r}')
    return {**_base_config(details, None), "applications": _kept(apps, set(svc.apps))}
