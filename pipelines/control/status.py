"""An InferenceService's status as KServe reports it, from what Serve reports (pure: no I/O).

:func:`build_status` turns one deployed service (:class:`~pipelines.control.services.Deployed`),
the ingress's own answer to ``GET /v1/models/{name}`` and the model downloads read from the
starting replicas' logs into the KServe object ``kubectl get isvc -o yaml`` shows: ``status.url``,
the conditions (``PredictorReady``, ``TransformerReady``, ``ExplainerReady``, ``IngressReady``,
``Ready``), ``components.*.traffic`` and ``modelStatus``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from pipelines.control.services import (
    API_VERSION,
    DEFAULT_HTTP_PORT,
    KIND,
    Deployed,
    _config,
    default_http_options,
    deployed_document,
    now_rfc3339,
    serve_running,
)
from pipelines.plan.layout import EXPLAINER_IMPORT

__all__ = [
    "LOADING_STATES",
    "build_status",
    "download_entry",
    "http_base",
    "is_ready",
    "model_status",
    "service_base",
    "traffic_summary",
]


def http_base(
    details: Mapping[str, Any], dashboard_address: str, http_options: Mapping[str, Any] | None
) -> str:
    """``http://host:port`` of Serve's proxy, as a client reaches it: a wildcard listen address
    (0.0.0.0, ::) is replaced by the dashboard's host."""
    opts = dict(details.get("http_options") or {}) if serve_running(details) else {}
    opts = opts or dict(http_options or default_http_options())
    host = str(opts.get("host") or "")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = urlparse(dashboard_address).hostname or "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    root = str(opts.get("root_path") or "").rstrip("/")
    return f"http://{host}:{int(opts.get('port') or DEFAULT_HTTP_PORT)}{root}"


def service_base(base: str, route_prefix: str | None) -> str:
    prefix = (route_prefix or "/").rstrip("/")
    return base + prefix


def _healthy(app: Mapping[str, Any]) -> tuple[bool, str, str]:
    """(ready, reason, message) of one Serve application."""
    if not app:
        return False, "ApplicationMissing", "the Serve application is not deployed"
    status = str(app.get("status") or "UNKNOWN")
    if status != "RUNNING":
        return False, status, str(app.get("message") or "")[:500]
    bad = {
        n: d.get("status") for n, d in (app.get("deployments") or {}).items() if d.get("status") != "HEALTHY"
    }
    if bad:
        return False, "DeploymentsNotHealthy", ", ".join(f"{n}: {s}" for n, s in sorted(bad.items()))
    return True, "", ""


def _replicas(app: Mapping[str, Any]) -> int:
    return sum(
        1
        for dep in (app.get("deployments") or {}).values()
        for r in dep.get("replicas") or []
        if r.get("state") == "RUNNING"
    )


def _condition(kind: str, ok: bool, reason: str = "", message: str = "", when: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": "True" if ok else "False"}
    if when:
        cond["lastTransitionTime"] = when
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def _when(app: Mapping[str, Any]) -> str:
    t = app.get("last_deployed_time_s")
    return now_rfc3339(float(t)) if t else ""


LOADING_STATES = frozenset({"STARTING", "UPDATING", "RECOVERING"})
"""Serve replica states in which a replica's constructor (the model download and load) runs."""


def model_status(svc: Deployed, downloads: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """KServe's ``status.modelStatus`` for the latest predictor revision, from its replicas:

    - ``states.activeModelState``: ``Pending`` (no replica yet), ``Loading`` (a replica is
      starting: downloading or loading the model), ``Loaded`` (one runs), ``Standby`` (scaled to
      zero: loaded on the next request), ``FailedToLoad`` (the application failed to deploy,
      with ``lastFailureInfo``); ``targetModelState`` is ``Loaded``;
    - ``transitionStatus``: ``UpToDate``, ``InProgress`` or ``BlockedByFailedLoad``;
    - ``copies.totalCopies``: replicas running;
    - ``downloads`` (isvc's own field): each model download the service's starting replicas
      report in their logs — ``application``, ``deployment``, ``replica``, ``uri``, ``bytes``,
      ``totalBytes``, ``percent``, ``rateBytesPerSecond``, ``elapsedSeconds``, ``done`` and
      ``error`` — so ``isvc get -o yaml`` shows a large model arriving.
    """
    table = svc.table if svc.layout == "routed" else []
    latest = next((e for e in table if e.get("tag") == "latest"), None)
    app = svc.apps.get(str(latest.get("app")), {}) if latest else svc.ingress_app
    replicas = [r for dep in (app.get("deployments") or {}).values() for r in dep.get("replicas") or []]
    running = sum(1 for r in replicas if r.get("state") == "RUNNING")
    status = str(app.get("status") or "")
    failure = None
    if status in ("DEPLOY_FAILED", "UNHEALTHY") and not running:
        state, transition = "FailedToLoad", "BlockedByFailedLoad"
        failure = {"reason": "ModelLoadFailed", "message": str(app.get("message") or status)[:500]}
    elif any(r.get("state") in LOADING_STATES for r in replicas):
        state, transition = "Loading", "InProgress"
    elif running:
        state, transition = "Loaded", "UpToDate"
    elif status == "RUNNING":
        state, transition = "Standby", "UpToDate"
    else:
        state, transition = "Pending", "InProgress"
    out: dict[str, Any] = {
        "transitionStatus": transition,
        "states": {"activeModelState": state, "targetModelState": "Loaded"},
        "copies": {"totalCopies": running},
    }
    if failure:
        out["lastFailureInfo"] = failure
    if downloads:
        out["downloads"] = [dict(d) for d in downloads]
    return out


def download_entry(
    application: str, deployment: str, replica: str, uri: str, snap: Mapping[str, Any]
) -> dict[str, Any]:
    """One ``modelStatus.downloads`` item from a :func:`pipelines.storage.progress.from_log` snapshot."""
    total = snap.get("total")
    entry: dict[str, Any] = {
        "application": application,
        "deployment": deployment,
        "replica": replica,
        "uri": uri,
        "bytes": snap.get("bytes"),
        "totalBytes": total,
        "percent": round(100 * snap["bytes"] / total, 1) if total and snap.get("bytes") is not None else None,
        "rateBytesPerSecond": snap.get("rate_bps"),
        "elapsedSeconds": snap.get("elapsed_s"),
        "done": bool(snap.get("done")),
    }
    if snap.get("error"):
        entry["error"] = snap["error"]
    return entry


def build_status(
    svc: Deployed,
    base: str,
    ingress_info: Mapping[str, Any] | None,
    downloads: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The KServe-shaped InferenceService (``apiVersion, kind, metadata, spec, status``) of a
    deployed service. ``base``: Serve's ``http://host:port``; ``ingress_info``: what the ingress
    answered to ``GET /v1/models/{name}`` (its traffic table, readiness, shadow), or None;
    ``downloads``: :func:`download_entry` items read from starting replicas' logs.
    Pure: no I/O."""
    doc = deployed_document(svc) or {"apiVersion": API_VERSION, "kind": KIND, "spec": {}}
    meta = dict(doc.get("metadata") or {})
    meta.update(name=svc.name, namespace=svc.namespace)
    if not meta.get("creationTimestamp"):
        times = [a.get("last_deployed_time_s") for a in svc.apps.values() if a.get("last_deployed_time_s")]
        if times:
            meta["creationTimestamp"] = now_rfc3339(min(float(t or 0) for t in times))
    spec = dict(doc.get("spec") or {})
    root = service_base(base, svc.route_prefix)
    url = f"{root}/v1/models/{svc.name}"
    ingress = svc.ingress_app
    ingress_ok, ingress_reason, ingress_msg = _healthy(ingress)
    conditions = []
    traffic: list[dict[str, Any]] = []
    replicas: dict[str, Any] = {}
    components: dict[str, Any] = {}
    info = dict(ingress_info or {})
    served = {(t.get("tag"), t.get("revision")): t for t in info.get("traffic") or []}
    if svc.layout == "routed":
        pred_ok, pred_reason, pred_msg = True, "", ""
        for entry in svc.table:
            app_name = str(entry.get("app"))
            ok, reason, msg = _healthy(svc.apps.get(app_name, {}))
            if not ok and pred_ok:
                pred_ok, pred_reason, pred_msg = False, reason, f"{app_name}: {msg}".rstrip(": ")
            traffic.append(
                {
                    "tag": entry.get("tag"),
                    "revisionName": app_name,
                    "percent": _percent(entry.get("percent")),
                    "latestRevision": entry.get("tag") == "latest",
                }
            )
        replicas["predictor"] = {
            t["revisionName"]: _replicas(svc.apps.get(t["revisionName"], {})) for t in traffic
        }
        table_ok = (
            bool(traffic)
            and all(
                (t["tag"], t["revisionName"]) in served
                and _percent(served[(t["tag"], t["revisionName"])].get("percent")) == t["percent"]
                and served[(t["tag"], t["revisionName"])].get("ready")
                for t in traffic
            )
            and len(served) == len(traffic)
        )
        when = _when(svc.apps.get(traffic[-1]["revisionName"], {})) if traffic else ""
        conditions.append(_condition("PredictorReady", pred_ok, pred_reason, pred_msg, when))
        if ingress_ok and not table_ok:
            ingress_ok, ingress_reason = False, "TrafficNotApplied"
            ingress_msg = (
                f"the ingress does not answer GET /v1/models/{svc.name} yet"
                if ingress_info is None
                else "the ingress has not applied the traffic table yet (or a revision is not ready)"
            )
    else:
        ok = ingress_ok and bool(info.get("ready"))
        traffic = [{"tag": "latest", "revisionName": svc.ingress, "percent": 100, "latestRevision": True}]
        replicas["predictor"] = {str(svc.ingress): _replicas(ingress)}
        conditions.append(
            _condition("PredictorReady", ok, ingress_reason or "NotReady", ingress_msg, _when(ingress))
        )
        ingress_ok = ok
    replicas["ingress"] = _replicas(ingress)
    if "transformer" in spec:
        conditions.append(
            _condition("TransformerReady", ingress_ok, ingress_reason, ingress_msg, _when(ingress))
        )
        components["transformer"] = {"url": url, "latestCreatedRevision": svc.ingress}
        if ingress_ok:
            components["transformer"]["latestReadyRevision"] = svc.ingress
    if "explainer" in spec:
        names = [n for n, a in svc.apps.items() if _config(a).get("import_path") == EXPLAINER_IMPORT]
        if svc.layout == "routed":
            wanted = svc.user_config.get("explainer")
            app = svc.apps.get(str(wanted), {}) if wanted else {}
            ok, reason, msg = (
                _healthy(app) if names else (False, "ApplicationMissing", "no explainer application")
            )
            replicas["explainer"] = _replicas(app)
        else:
            ok, reason, msg = ingress_ok, ingress_reason, ingress_msg
            replicas["explainer"] = 0
        conditions.append(_condition("ExplainerReady", ok, reason, msg))
        components["explainer"] = {"url": f"{root}/v1/models/{svc.name}:explain"}
        if names:
            components["explainer"]["latestCreatedRevision"] = names[0]
    conditions.append(_condition("IngressReady", ingress_ok, ingress_reason, ingress_msg, _when(ingress)))
    ready = all(c["status"] == "True" for c in conditions)
    failing = next((c for c in conditions if c["status"] != "True"), None)
    conditions.append(
        _condition(
            "Ready",
            ready,
            f"{failing['type']} not ready" if failing else "",
            str(failing.get("message", "")) if failing else "",
        )
    )
    predictor: dict[str, Any] = {"traffic": traffic, "url": url}
    latest = next((t for t in traffic if t["latestRevision"]), None)
    if latest:
        predictor["latestCreatedRevision"] = latest["revisionName"]
        latest_ok, _, _ = _healthy(svc.apps.get(str(latest["revisionName"]), {}))
        if latest_ok:
            predictor["latestReadyRevision"] = latest["revisionName"]
    rolled = next((t for t in traffic if t["percent"] >= 100), None) or next(
        (t for t in traffic if t["tag"] == "prev"), None
    )
    if rolled:
        predictor["latestRolledoutRevision"] = rolled["revisionName"]
    prev = next((t for t in traffic if t["tag"] == "prev"), None)
    if prev and rolled is not prev:
        predictor["previousRolledoutRevision"] = prev["revisionName"]
    if info.get("shadow"):
        predictor["shadow"] = info["shadow"]
    components = {"predictor": predictor, **components}
    annotations = meta.get("annotations") or {}
    status: dict[str, Any] = {
        "url": url,
        "address": {"url": root},
        "conditions": conditions,
        "components": components,
        "deploymentMode": annotations.get("serving.kserve.io/deploymentMode", "Serverless"),
        "modelStatus": model_status(svc, downloads),
        "replicas": replicas,
        "applications": sorted(svc.apps),
        "routePrefix": svc.route_prefix or "/",
    }
    if meta.get("generation") is not None:
        status["observedGeneration"] = meta["generation"]
    return {
        "apiVersion": doc.get("apiVersion", API_VERSION),
        "kind": KIND,
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


def _percent(value: Any) -> int | float:
    number = float(value or 0)
    return int(number) if number.is_integer() else number


def is_ready(obj: Mapping[str, Any], expected_generation: int | None = None) -> bool:
    """KServe's ``is_isvc_ready``: the ``Ready`` condition is True (and the generation observed)."""
    status = obj.get("status") or {}
    if expected_generation is not None and int(status.get("observedGeneration") or 0) < expected_generation:
        return False
    return any(
        c.get("type") == "Ready" and str(c.get("status")).lower() == "true"
        for c in status.get("conditions") or []
    )


def traffic_summary(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(PREV, LATEST) percents as ``kubectl get isvc`` prints them (PREV blank without a canary)."""
    traffic = ((obj.get("status") or {}).get("components") or {}).get("predictor", {}).get("traffic") or []
    prev = next((t for t in traffic if t.get("tag") == "prev"), None)
    latest = next((t for t in traffic if t.get("latestRevision")), None)
    return (
        "" if prev is None else str(prev.get("percent")),
        "" if latest is None else str(latest.get("percent")),
    )
