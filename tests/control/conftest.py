"""A Ray dashboard in memory: PUT stores the whole Serve config, GET answers Serve's instance
details as if every application were RUNNING with one replica per deployment."""

from __future__ import annotations

import copy
from typing import Any

import pytest

_DEPLOYMENT = {
    "pipelines.app:build_ingress": "ingress",
    "pipelines.app:build_predictor": "predictor",
    "pipelines.app:build_explainer": "explainer",
    "pipelines.app:build": "ingress",
}


def details_of(config: dict[str, Any] | None, status: str = "RUNNING") -> dict[str, Any]:
    """Serve's instance details (the dashboard's GET) for a deployed ``config``."""
    if config is None:
        return {"controller_info": {}, "proxies": {}, "applications": {}, "target_capacity": None}
    apps = {}
    for app in config["applications"]:
        dep = _DEPLOYMENT.get(app.get("import_path"), "main")
        apps[app["name"]] = {
            "name": app["name"],
            "route_prefix": app.get("route_prefix"),
            "status": status,
            "message": "",
            "last_deployed_time_s": 1767225600.0,
            "deployed_app_config": copy.deepcopy(app),
            "source": "declarative",
            "deployments": {dep: {"name": dep, "status": "HEALTHY", "replicas": [{"state": "RUNNING"}]}},
        }
    return {
        "controller_info": {"node_id": "n1"},
        "proxy_location": "EveryNode",
        "http_options": copy.deepcopy(config["http_options"]),
        "applications": apps,
        "target_capacity": None,
    }


class FakeDashboard:
    address = "http://127.0.0.1:8265"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = copy.deepcopy(config)
        self.puts: list[dict[str, Any]] = []

    def details(self) -> dict[str, Any]:
        return details_of(self.config)

    def applications(self) -> dict[str, Any]:
        return self.details()["applications"]

    def deploy(self, config: dict[str, Any]) -> None:
        self.config = copy.deepcopy(config)
        self.puts.append(copy.deepcopy(config))

    def close(self) -> None:
        pass


def answered(self: Any, base: str, svc: Any) -> dict[str, Any]:
    """What a routed ingress answers to GET /v1/models/{name} once its table is applied."""
    return {
        "name": svc.name,
        "ready": True,
        "traffic": [
            {"tag": e["tag"], "revision": e["app"], "percent": e["percent"], "ready": True} for e in svc.table
        ],
    }


@pytest.fixture
def fake_dashboard(monkeypatch: pytest.MonkeyPatch) -> FakeDashboard:
    """A FakeDashboard that every ControlPlane (CLI, KServeClient) gets; ingresses answer."""
    from pipelines.control import plane

    fake = FakeDashboard()
    monkeypatch.setattr(plane, "Dashboard", lambda *a, **k: fake)
    monkeypatch.setattr("pipelines.sdk.kserve_client.Dashboard", lambda *a, **k: fake)
    monkeypatch.setattr(plane.ControlPlane, "ingress_info", answered)
    return fake
