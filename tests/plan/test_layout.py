"""The routed layout (pipelines.plan.layout): what makes a canary step light. The ingress's build
args never change across the steps of a rollout (Ray would restart it), an unchanged revision
keeps its application name (Ray would rebuild it), and the traffic table is the user_config."""

from __future__ import annotations

import pytest

from benchmarks.rollout import ROLLOUT, V1, V2, churn_isvc, serve_config
from pipelines.plan.layout import ingress_plan, routed_apps, traffic_config
from pipelines.spec import parse_isvc


def apps_of(**kwargs: object) -> dict[str, dict]:
    return {a["name"]: a for a in serve_config(churn_isvc(**kwargs), 8000)["applications"]}  # type: ignore[arg-type]


def test_the_ingress_args_are_the_same_in_every_step_of_a_rollout() -> None:
    steps = [{"stable": V1}] + [kw for _, kw in ROLLOUT]
    configs = [serve_config(churn_isvc(**kw), 8000) for kw in steps]  # type: ignore[arg-type]
    ingress = [c["applications"][-1] for c in configs]
    assert {i["name"] for i in ingress} == {"ml-serving-churn-classifier"}
    assert all(i["args"] == ingress[0]["args"] for i in ingress)  # → no restart, only reconfigure
    assert "predictor" not in ingress[0]["args"]["isvc"]["spec"]
    assert "isvc.dev/shadow" not in ingress[1]["args"]["isvc"]["metadata"].get("annotations", {})


def test_an_unchanged_revision_keeps_its_application_across_a_promote() -> None:
    canary = apps_of(stable=V1, new=V2, percent=100)
    promoted = apps_of(stable=V2)
    v2_as_canary = [n for n, a in canary.items() if "predictor-v2" in str(a["args"])]
    v2_promoted = [n for n, a in promoted.items() if "predictor-v2" in str(a["args"])]
    assert v2_as_canary == v2_promoted  # the same name and args: Ray leaves it running
    assert canary[v2_as_canary[0]]["args"] == promoted[v2_promoted[0]]["args"]


def test_the_traffic_table_tags_percents_and_shadow() -> None:
    isvc = parse_isvc(churn_isvc(V1, V2, 30, shadow=True))
    table = traffic_config(isvc)
    assert [(p["tag"], p["percent"]) for p in table["predictors"]] == [("prev", 70), ("latest", 30)]
    assert table["shadow"] == {"from": "prev", "to": "latest", "queue": 64}
    single = traffic_config(parse_isvc(churn_isvc(V1)))
    assert [(p["tag"], p["percent"]) for p in single["predictors"]] == [("latest", 100)]
    zero = traffic_config(parse_isvc(churn_isvc(V1, predictor_fields={"minReplicas": 0})))
    assert zero["predictors"][0]["scalesToZero"] is True


def test_the_canary_inherits_what_it_leaves_unset() -> None:
    doc = churn_isvc(V1, V2, 20, predictor_fields={"minReplicas": 2, "timeout": 7})
    doc["spec"]["predictor"]["newModel"]["sklearn"].pop("resources")
    predictor_apps = routed_apps(parse_isvc(doc))[:2]
    canary = predictor_apps[1]["args"]["isvc"]["spec"]["predictor"]
    assert canary["minReplicas"] == 2 and canary["timeout"] == 7
    assert canary["sklearn"]["resources"] == {"requests": {"cpu": "250m"}}


def test_the_ingress_plan_needs_no_predictor() -> None:
    ingress = routed_apps(parse_isvc(churn_isvc(V1)))[-1]
    plan = ingress_plan(ingress["args"]["isvc"])
    assert plan.transformer is not None and plan.transformer.class_path.endswith("ChurnTransformer")
    assert plan.ingress.scaling.min_replicas >= 1


@pytest.mark.parametrize("step,kwargs", ROLLOUT, ids=[s for s, _ in ROLLOUT])
def test_every_rollout_step_renders_a_valid_serve_config(step: str, kwargs: dict) -> None:
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(serve_config(churn_isvc(**kwargs), 8000))


def test_a_direct_explainer_that_calls_the_predictor_deployment_names_its_app() -> None:
    from pipelines.plan import build_plan
    from pipelines.plan.layout import with_direct_explainer
    from pipelines.spec import load_isvc, parse_isvc

    doc = load_isvc("configs/isvc/churn.yaml").to_dict()
    doc["metadata"].setdefault("annotations", {})["isvc.dev/explainer-model"] = "deployment"
    isvc = parse_isvc(doc)
    entry = {
        "name": "churn",
        "route_prefix": "/ns/churn",
        "import_path": "pipelines.app:build",
        "args": {"isvc": doc},
    }
    service, explainer = with_direct_explainer(entry, build_plan(isvc))
    assert service["args"]["explainer_app"] == "churn-explainer"
    assert explainer["args"] == {"isvc": doc, "predictor_app": "churn"}
    assert explainer["route_prefix"] == "/ns/churn/v1/models/churn-classifier:explain"
    hidden = with_direct_explainer({**entry, "route_prefix": None}, build_plan(isvc))[1]
    assert hidden["route_prefix"] is None  # no HTTP route for the service: none for its explainer
