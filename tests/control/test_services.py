"""The control plane's pure parts: the whole Serve config an apply PUTs (other services kept,
this one replaced, route prefixes), KServe's revision semantics read back from the cluster, the
stored document, delete, and the KServe-shaped status."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.control.services import (
    STORED_KEY,
    ControlError,
    NotFound,
    apply_config,
    delete_config,
    derived_document,
    group_services,
    merge_patch,
    read_documents,
    resolve_revisions,
    rolled_out_predictor,
)
from pipelines.control.status import build_status, is_ready
from pipelines.errors import SpecError
from tests.control.conftest import details_of

NOW = 1767225600.0


def churn(uri: str = "s3://my-models/churn/v1/", **predictor: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "churn-classifier", "namespace": "ml-serving"},
        "spec": {
            "predictor": {
                "serviceAccountName": "kserve-s3-sa",
                **predictor,
                "sklearn": {"storageUri": uri, "resources": {"requests": {"cpu": "100m"}}},
            }
        },
    }


def other(name: str = "sentiment") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "nlp"},
        "spec": {"predictor": {"sklearn": {"storageUri": "s3://my-models/x/"}}},
    }


def deploy(details: dict[str, Any], *docs: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    config, results = apply_config(details, [({}, d) for d in docs], now=NOW)
    return details_of(config), results


def ingress(details: dict[str, Any], name: str = "ml-serving-churn-classifier") -> dict[str, Any]:
    return details["applications"][name]


def table(details: dict[str, Any], name: str = "ml-serving-churn-classifier") -> list[tuple[str, int]]:
    cfg = ingress(details, name)["deployed_app_config"]
    uc = cfg["deployments"][0]["user_config"]
    return [(e["tag"], e["percent"]) for e in uc["predictors"]]


def apps_of(details: dict[str, Any], tag: str, name: str = "ml-serving-churn-classifier") -> str:
    uc = ingress(details, name)["deployed_app_config"]["deployments"][0]["user_config"]
    return next(e["app"] for e in uc["predictors"] if e["tag"] == tag)


def test_first_apply_declares_the_routed_layout_with_the_stored_document() -> None:
    config, results = apply_config(details_of(None), [({}, churn())], now=NOW)
    names = [a["name"] for a in config["applications"]]
    assert names[-1] == "ml-serving-churn-classifier" and names[0].startswith(names[-1] + "-predictor-")
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8000}
    ing = config["applications"][-1]
    assert ing["route_prefix"] == "/"
    stored = ing["deployments"][0]["user_config"][STORED_KEY]
    assert stored["spec"] == churn()["spec"]  # the user's document as written (serviceAccountName too)
    assert stored["metadata"]["generation"] == 1
    assert stored["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert results[0].action == "created" and results[0].route_prefix == "/"


def test_http_options_come_from_the_running_serve_else_from_the_caller() -> None:
    config, _ = apply_config(details_of(None), [({}, churn())], http_options={"host": "127.0.0.1", "port": 9})
    assert config["http_options"] == {"host": "127.0.0.1", "port": 9}
    running = details_of(config)
    running["http_options"] = {"host": "0.0.0.0", "port": 8123, "keep_alive_timeout_s": 90}
    again, _ = apply_config(running, [({}, other())], http_options={"host": "x", "port": 1})
    assert again["http_options"]["port"] == 8123


def test_applying_one_service_keeps_the_others_and_foreign_apps() -> None:
    details, _ = deploy(details_of(None), churn())
    foreign = {"name": "mine", "route_prefix": "/mine", "import_path": "my.app:build", "args": {"x": 1}}
    details["applications"]["mine"] = {"status": "RUNNING", "deployed_app_config": foreign, "deployments": {}}
    before = {n: a["deployed_app_config"] for n, a in details["applications"].items()}
    config, results = apply_config(details, [({}, other())], now=NOW)
    by_name = {a["name"]: a for a in config["applications"]}
    for name, cfg in before.items():  # re-declared unchanged
        assert by_name[name] == cfg
    assert by_name["nlp-sentiment"]["route_prefix"] == "/nlp/sentiment"  # "/" is churn's
    assert results[0].route_prefix == "/nlp/sentiment"
    after = details_of(config)
    # re-applying churn keeps its "/" and everything else; the second service keeps its prefix
    again, res = apply_config(after, [({}, churn()), ({}, other())], now=NOW)
    assert {
        a["name"]: a.get("route_prefix") for a in again["applications"] if "predictor" not in a["name"]
    } == {
        "ml-serving-churn-classifier": "/",
        "nlp-sentiment": "/nlp/sentiment",
        "mine": "/mine",
    }
    assert [r.action for r in res] == ["unchanged", "unchanged"]


def test_an_imperative_app_cannot_be_kept_by_a_whole_config_put() -> None:
    details = details_of(None)
    details["controller_info"] = {"node_id": "n"}
    details["applications"] = {"adhoc": {"status": "RUNNING", "deployed_app_config": None}}
    with pytest.raises(ControlError, match="serve.run"):
        apply_config(details, [({}, churn())])
    details["applications"]["adhoc"]["status"] = "DELETING"  # going away: not re-declared
    config, _ = apply_config(details, [({}, churn())])
    assert "adhoc" not in {a["name"] for a in config["applications"]}


def test_invalid_documents_are_spec_errors_with_the_service_name() -> None:
    bad = churn()
    bad["spec"]["predictor"]["sklearn"]["storageUrl"] = "x"
    with pytest.raises(SpecError, match="churn-classifier: .*storageUri"):
        apply_config(details_of(None), [({}, bad)])
    with pytest.raises(SpecError, match="given twice"):
        apply_config(details_of(None), [({}, churn()), ({}, churn())])


def test_kserve_canary_keeps_the_rolled_out_predictor_at_100_minus_p() -> None:
    details, _ = deploy(details_of(None), churn())
    v1_app = apps_of(details, "latest")
    details, res = deploy(details, churn("s3://my-models/churn/v2/", canaryTrafficPercent=20))
    assert table(details) == [("prev", 80), ("latest", 20)]
    assert apps_of(details, "prev") == v1_app  # the same application: not restarted
    assert res[0].action == "configured"
    stored = res[0].stored
    assert (
        stored["spec"]["predictor"]["canaryTrafficPercent"] == 20
        and "newModel" not in stored["spec"]["predictor"]
    )
    assert stored["metadata"]["generation"] == 2
    assert stored["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    v2_app = apps_of(details, "latest")
    # a new percent on the same new spec: v1 still the rolled-out one
    details, _ = deploy(details, churn("s3://my-models/churn/v2/", canaryTrafficPercent=50))
    assert table(details) == [("prev", 50), ("latest", 50)]
    assert (apps_of(details, "prev"), apps_of(details, "latest")) == (v1_app, v2_app)
    # 100 %: v2 is rolled out; a v3 canary then splits against v2
    details, _ = deploy(details, churn("s3://my-models/churn/v2/", canaryTrafficPercent=100))
    assert table(details) == [("prev", 0), ("latest", 100)]
    details, _ = deploy(details, churn("s3://my-models/churn/v3/", canaryTrafficPercent=10))
    assert table(details) == [("prev", 90), ("latest", 10)]
    assert apps_of(details, "prev") == v2_app
    # removing the percent promotes: one revision at 100 %
    details, _ = deploy(details, churn("s3://my-models/churn/v3/"))
    assert table(details) == [("latest", 100)]
    assert len(group_services(details["applications"])[("ml-serving", "churn-classifier")].apps) == 2


def test_a_percent_on_the_rolled_out_spec_is_one_revision_and_a_first_create_too() -> None:
    details, _ = deploy(details_of(None), churn(canaryTrafficPercent=30))  # first create
    assert table(details) == [("latest", 100)]
    details, _ = deploy(details, churn(canaryTrafficPercent=30))  # same spec as rolled out
    assert table(details) == [("latest", 100)]


def test_resolve_revisions_is_pure_and_leaves_explicit_new_model_alone() -> None:
    doc = churn("s3://b/v2/", canaryTrafficPercent=20)
    out = resolve_revisions(doc, {"sklearn": {"storageUri": "s3://b/v1/"}})
    assert out["spec"]["predictor"]["sklearn"]["storageUri"] == "s3://b/v1/"
    assert out["spec"]["predictor"]["newModel"]["sklearn"]["storageUri"] == "s3://b/v2/"
    assert doc == churn("s3://b/v2/", canaryTrafficPercent=20)  # not mutated
    explicit = churn(canaryTrafficPercent=20, newModel={"sklearn": {"storageUri": "s3://b/v9/"}})
    assert resolve_revisions(explicit, {"sklearn": {"storageUri": "s3://b/v1/"}})["spec"] == explicit["spec"]
    assert resolve_revisions(doc, None)["spec"] == doc["spec"]


def test_the_seeds_canary_patch_gives_stable_old_new_model_and_percent() -> None:
    details, _ = deploy(details_of(None), churn())
    v1_app = apps_of(details, "latest")
    svc = group_services(details["applications"])[("ml-serving", "churn-classifier")]
    patch = {
        "spec": {
            "predictor": {"canaryTrafficPercent": 20, "newModel": {"sklearn": {"storageUri": "s3://v2/"}}}
        }
    }
    merged = merge_patch(svc.stored, patch)
    assert merged["spec"]["predictor"]["sklearn"]["storageUri"] == "s3://my-models/churn/v1/"
    details, _ = deploy(details, merged)
    assert table(details) == [("prev", 80), ("latest", 20)] and apps_of(details, "prev") == v1_app
    new_side = details["applications"][apps_of(details, "latest")]["deployed_app_config"]["args"]["isvc"]
    pred = new_side["spec"]["predictor"]
    assert pred["sklearn"]["storageUri"] == "s3://v2/"
    assert pred["sklearn"]["resources"] == {"requests": {"cpu": "100m"}}  # newModel inherits resources


def test_delete_removes_only_that_services_apps() -> None:
    details, _ = deploy(details_of(None), churn(), other())
    config = delete_config(details, "ml-serving", "churn-classifier")
    assert {a["name"] for a in config["applications"]} == {
        n for n in details["applications"] if n.startswith("nlp-sentiment")
    }
    with pytest.raises(NotFound):
        delete_config(details, "ml-serving", "nope")


def test_services_deployed_by_render_are_read_back_from_their_args() -> None:
    details, _ = deploy(details_of(None), churn("s3://b/v1/"))
    details, _ = deploy(details, churn("s3://b/v2/", canaryTrafficPercent=25))
    for app in details["applications"].values():  # as `isvc render | serve deploy` leaves them
        for dep in app["deployed_app_config"].get("deployments") or []:
            dep["user_config"].pop(STORED_KEY, None)
    svc = group_services(details["applications"])[("ml-serving", "churn-classifier")]
    assert svc.stored is None
    doc = derived_document(svc)
    assert doc is not None
    pred = doc["spec"]["predictor"]
    assert (pred["sklearn"]["storageUri"], pred["canaryTrafficPercent"]) == ("s3://b/v1/", 25)
    assert pred["newModel"]["sklearn"]["storageUri"] == "s3://b/v2/"
    rolled = rolled_out_predictor(svc)
    assert rolled is not None and rolled["sklearn"]["storageUri"] == "s3://b/v1/"


def status_of(details: dict[str, Any], info: dict[str, Any] | None, name: str = "churn-classifier") -> Any:
    svc = next(s for s in group_services(details["applications"]).values() if s.name == name)
    return svc, build_status(svc, "http://127.0.0.1:8000", info)


def served(svc: Any, ready: bool = True, **extra: Any) -> dict[str, Any]:
    traffic = [
        {"tag": e["tag"], "revision": e["app"], "percent": e["percent"], "ready": ready} for e in svc.table
    ]
    return {"name": svc.name, "ready": True, "traffic": traffic, **extra}


def test_status_is_kserve_shaped_with_traffic_url_and_conditions() -> None:
    details, _ = deploy(details_of(None), churn())
    details, _ = deploy(details, churn("s3://my-models/churn/v2/", canaryTrafficPercent=20))
    svc, _ = status_of(details, None)
    shadow = {"served": "prev", "shadow": "x", "rows": 10, "agreed_rows": 9, "agreement": 0.9}
    _, obj = status_of(details, served(svc, shadow=shadow))
    status = obj["status"]
    assert status["url"] == "http://127.0.0.1:8000/v1/models/churn-classifier"
    assert status["address"]["url"] == "http://127.0.0.1:8000"
    assert [c["type"] for c in status["conditions"]] == ["PredictorReady", "IngressReady", "Ready"]
    assert all(c["status"] == "True" for c in status["conditions"]) and is_ready(obj)
    traffic = status["components"]["predictor"]["traffic"]
    assert [(t["tag"], t["percent"], t["latestRevision"]) for t in traffic] == [
        ("prev", 80, False),
        ("latest", 20, True),
    ]
    assert traffic[0]["revisionName"] == apps_of(details, "prev")
    pred = status["components"]["predictor"]
    assert pred["latestRolledoutRevision"] == apps_of(details, "prev")
    assert pred["latestReadyRevision"] == apps_of(details, "latest") and pred["shadow"] == shadow
    assert obj["metadata"]["generation"] == 2 == status["observedGeneration"]
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert status["replicas"]["ingress"] == 1 and sorted(status["replicas"]["predictor"].values()) == [1, 1]


def test_not_ready_until_the_ingress_applied_the_table_and_every_app_runs() -> None:
    details, _ = deploy(details_of(None), churn())
    svc, obj = status_of(details, None)
    assert not is_ready(obj)
    ingress_cond = next(c for c in obj["status"]["conditions"] if c["type"] == "IngressReady")
    assert ingress_cond["reason"] == "TrafficNotApplied"
    _, obj = status_of(details, served(svc, ready=False))
    assert not is_ready(obj)
    stale = served(svc)
    stale["traffic"][0]["revision"] = "ml-serving-churn-classifier-predictor-old"
    assert not is_ready(status_of(details, stale)[1])
    predictor = apps_of(details, "latest")
    details["applications"][predictor]["status"] = "DEPLOYING"
    _, obj = status_of(details, served(svc))
    cond = next(c for c in obj["status"]["conditions"] if c["type"] == "PredictorReady")
    assert (cond["status"], cond["reason"]) == ("False", "DEPLOYING")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "PredictorReady not ready"
    assert not is_ready(obj) and not is_ready(obj, expected_generation=5)


def test_model_status_follows_the_latest_revisions_replicas_and_reads_their_downloads() -> None:
    from pipelines.control.plane import ControlPlane
    from tests.control.conftest import FakeDashboard

    details, _ = deploy(details_of(None), churn())
    predictor = apps_of(details, "latest")
    replicas = details["applications"][predictor]["deployments"]["predictor"]["replicas"]
    assert status_of(details, None)[1]["status"]["modelStatus"] == {
        "transitionStatus": "UpToDate",
        "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
        "copies": {"totalCopies": 1},
    }
    replicas[0] = {
        "state": "STARTING",
        "replica_id": "r1",
        "node_id": "n1",
        "log_file_path": "/serve/replica_x_predictor_r1.log",
    }
    log = (
        "INFO 2026-12-01 18:00:00,000 x_predictor r1 -- downloading s3://my-models/churn/v1/ (2.5 MB)\n"
        "INFO 2026-12-01 18:00:02,000 x_predictor r1 -- "
        "downloading s3://my-models/churn/v1/: 1.0 MB of 2.5 MB (40%), 0.5 MB/s, 2.0 s\n"
    )

    class Logs(FakeDashboard):
        asked: list[tuple[str, str, int]] = []

        def details(self) -> dict[str, Any]:
            return details

        def log_tail(self, node_id: str, filename: str, lines: int = 200) -> str:
            self.asked.append((node_id, filename, lines))
            return log

    plane = ControlPlane(Logs())  # type: ignore[arg-type]
    plane.ingress_info = lambda base, svc: served(svc)  # type: ignore[method-assign]
    model = plane.get("churn-classifier")["status"]["modelStatus"]
    assert Logs.asked == [("n1", "/serve/replica_x_predictor_r1.log", 200)]  # only the starting one
    assert model["states"]["activeModelState"] == "Loading" and model["transitionStatus"] == "InProgress"
    assert model["copies"] == {"totalCopies": 0}
    assert model["downloads"] == [
        {
            "application": predictor,
            "deployment": "predictor",
            "replica": "r1",
            "uri": "s3://my-models/churn/v1/",
            "bytes": 1_000_000,
            "totalBytes": 2_500_000,
            "percent": 40.0,
            "rateBytesPerSecond": 500_000.0,
            "elapsedSeconds": 2.0,
            "done": False,
        }
    ]
    replicas.clear()  # scaled to zero
    assert status_of(details, None)[1]["status"]["modelStatus"]["states"]["activeModelState"] == "Standby"
    details["applications"][predictor].update(status="DEPLOY_FAILED", message="model.joblib: not found")
    failed = status_of(details, None)[1]["status"]["modelStatus"]
    assert failed["transitionStatus"] == "BlockedByFailedLoad"
    assert failed["lastFailureInfo"] == {"reason": "ModelLoadFailed", "message": "model.joblib: not found"}
    details["applications"][predictor].update(status="DEPLOYING")
    assert status_of(details, None)[1]["status"]["modelStatus"]["states"]["activeModelState"] == "Pending"


def test_transformer_and_explainer_get_their_conditions() -> None:
    doc = yaml.safe_load(Path("configs/isvc/churn.yaml").read_text())
    details, _ = deploy(details_of(None), doc)
    svc, _ = status_of(details, None)
    _, obj = status_of(details, served(svc))
    kinds = [c["type"] for c in obj["status"]["conditions"]]
    assert kinds == ["PredictorReady", "TransformerReady", "ExplainerReady", "IngressReady", "Ready"]
    assert is_ready(obj)
    assert obj["status"]["replicas"]["explainer"] == 1
    assert set(obj["status"]["components"]) == {"predictor", "transformer", "explainer"}


def test_read_documents_takes_several_inference_services(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([churn(), other()]))
    assert [d["metadata"]["name"] for _, d in read_documents(path)] == ["churn-classifier", "sentiment"]
    path.write_text(yaml.safe_dump_all([churn(), {"kind": "TrainedModel", "metadata": {"name": "t"}}]))
    with pytest.raises(SpecError, match="TrainedModel"):
        read_documents(path)
    entries = read_documents(Path("configs/churn.yaml"))  # a Serve config
    assert entries[0][1]["metadata"]["name"] == "churn-classifier"


def test_merge_patch_is_rfc7386() -> None:
    doc = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(doc, {"a": {"c": [3]}, "d": None, "e": {"f": None}}) == {
        "a": {"b": 1, "c": [3]},
        "e": {},
    }
    assert doc == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(copy.deepcopy(doc), "x") == "x"


def test_an_app_of_the_same_name_is_replaced_and_frees_its_prefix() -> None:
    # e.g. `serve deploy configs/churn.yaml`: args.isvc is a path, so isvc cannot read it back
    single = {
        "name": "ml-serving-churn-classifier",
        "route_prefix": "/",
        "import_path": "pipelines.app:build",
        "args": {"isvc": "configs/isvc/churn.yaml"},
    }
    details = details_of({"http_options": {"host": "0.0.0.0", "port": 8000}, "applications": [single]})
    config, results = apply_config(details, [({}, churn())])
    assert [a["import_path"] for a in config["applications"]] == [
        "pipelines.app:build_predictor",
        "pipelines.app:build_ingress",
    ]
    assert results[0].route_prefix == "/"


def test_a_dropped_dashboard_connection_is_retried_a_refusal_is_not() -> None:
    import httpx

    from pipelines.control.dashboard import DashboardError
    from pipelines.control.plane import ControlPlane
    from tests.control.conftest import FakeDashboard

    class Flaky(FakeDashboard):
        calls = 0

        def details(self) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                try:
                    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
                except httpx.HTTPError as exc:
                    raise DashboardError(f"cannot reach the Ray dashboard: {exc}") from exc
            if self.calls == 2:
                return super().details()
            raise DashboardError("refused the token (401)")

    flaky = Flaky()
    plane = ControlPlane(flaky)  # type: ignore[arg-type]
    assert plane.details()["applications"] == {} and flaky.calls == 2
    with pytest.raises(DashboardError, match="401"):
        plane.details()
    assert flaky.calls == 3


def test_a_put_that_fails_with_500_is_retried_a_400_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.control import plane as control_plane
    from pipelines.control.dashboard import DashboardError
    from tests.control.conftest import FakeDashboard

    class Failing(FakeDashboard):
        errors = ["PUT /api/serve/applications/ on http://x: 500 Traceback ... ActorDiedError"]

        def deploy(self, config: dict[str, Any]) -> None:
            if self.errors:
                raise DashboardError(self.errors.pop())
            super().deploy(config)

    monkeypatch.setattr(control_plane.time, "sleep", lambda s: None)
    dash = Failing()
    plane = control_plane.ControlPlane(dash)  # type: ignore[arg-type]
    plane.apply([({}, churn())])
    assert len(dash.puts) == 1
    dash.errors = ["PUT /api/serve/applications/ on http://x: 400 duplicate route prefix"]
    with pytest.raises(DashboardError, match="400"):
        plane.apply([({}, churn("s3://b/v2/"))])


def test_each_explainer_gets_its_own_route_under_its_service_prefix() -> None:
    first = yaml.safe_load(Path("configs/isvc/churn.yaml").read_text())
    second = copy.deepcopy(first)
    second["metadata"] = {"name": "churn-b", "namespace": "team"}
    details, _ = deploy(details_of(None), first)
    config, results = apply_config(details, [({}, second)], now=NOW)
    routes = {
        a["name"]: a["route_prefix"]
        for a in config["applications"]
        if a["import_path"] in ("pipelines.app:build_explainer", "pipelines.app:build_ingress")
    }
    explainers = {n: r for n, r in routes.items() if "-explainer-" in n}
    assert sorted(explainers.values()) == [
        "/team/churn-b/v1/models/churn-b:explain",  # the second service is under /team/churn-b
        "/v1/models/churn-classifier:explain",
    ]
    assert routes["team-churn-b"] == "/team/churn-b" and results[0].route_prefix == "/team/churn-b"
