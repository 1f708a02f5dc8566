"""YAML → plan → Serve deployment options, without starting Ray."""

from __future__ import annotations

import pytest

from pipelines.app import DEFAULT_NUM_CPUS, deployment_options
from pipelines.errors import SpecError
from pipelines.plan import Resources, Scaling, build_plan
from pipelines.spec import isvc_from_serve_args, load_isvc
from tests.helpers import ROOT, SPECS


def test_autoscaling_maps_to_autoscaling_config():
    opts = deployment_options(
        Scaling(
            min_replicas=0,
            max_replicas=5,
            autoscale=True,
            target_ongoing_requests=20,
            max_ongoing_requests=64,
        ),
        Resources(num_cpus=0.5, num_gpus=1, memory_bytes=2**30),
        env={"A": "1"},
    )
    assert opts["autoscaling_config"] == {
        "min_replicas": 0,
        "max_replicas": 5,
        "initial_replicas": 1,
        "target_ongoing_requests": 20,
        "metrics_interval_s": 1.0,  # may scale to zero: the first request is seen within 1 s
    }
    assert opts["max_ongoing_requests"] == 64
    assert opts["ray_actor_options"] == {
        "num_cpus": 0.5,
        "num_gpus": 1,
        "memory": 2**30,
        "runtime_env": {"env_vars": {"RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH": "536870912", "A": "1"}},
    }
    assert "num_replicas" not in opts


def test_fixed_replicas_and_ingress_never_zero():
    raw = deployment_options(Scaling(min_replicas=3, max_replicas=3), Resources())
    assert raw["num_replicas"] == 3 and "autoscaling_config" not in raw
    assert raw["ray_actor_options"]["num_cpus"] == DEFAULT_NUM_CPUS
    # The planner decides the ingress never scales to zero (the seed's minScale "0").
    plan = build_plan(load_isvc(SPECS / "good" / "seed_sklearn_churn.yaml"))
    assert plan.predictor.scaling.min_replicas == 0 and plan.ingress.scaling.min_replicas == 1
    ingress = deployment_options(plan.ingress.scaling, plan.ingress.resources)
    assert ingress["autoscaling_config"]["min_replicas"] == 1
    assert "metrics_interval_s" not in ingress["autoscaling_config"]  # Ray's default


def test_default_concurrency_is_never_rays_five():
    opts = deployment_options(Scaling(), Resources())
    assert opts["max_ongoing_requests"] >= 64 and opts["max_queued_requests"] > 0


def test_shipped_configs_build_plans():
    import yaml

    for name, collocate in (("churn.yaml", False), ("churn-collocated.yaml", True)):
        cfg = yaml.safe_load((ROOT / "configs" / name).read_text())
        app, *explainer = cfg["applications"]
        assert app["import_path"] == "pipelines.app:build"
        args = {k: v for k, v in app["args"].items() if k != "explainer_app"}
        plan = build_plan(isvc_from_serve_args(args))
        if plan.explainer is not None:  # the explainer on its own route, named by the first app
            assert [(e["name"], e["route_prefix"], e["import_path"]) for e in explainer] == [
                (
                    app["args"]["explainer_app"],
                    f"/v1/models/{plan.name}:explain",
                    "pipelines.app:build_explainer",
                )
            ]
            assert explainer[0]["args"] == args
        assert plan.app_name == app["name"]
        assert plan.collocate is collocate
        assert plan.predictor.args == {"method": "predict_proba"}
        assert plan.transformer is not None and plan.transformer.class_path.endswith("ChurnTransformer")
    assert build_plan(load_isvc(ROOT / "configs" / "isvc" / "churn.yaml")).name == "churn-classifier"


def test_build_takes_the_kserve_document_itself_or_a_path(monkeypatch) -> None:
    from ray.serve import Application

    from pipelines.app import build

    monkeypatch.chdir(ROOT)  # `serve run pipelines.app:build isvc=configs/isvc/churn.yaml` from the root
    by_path = build({"isvc": "configs/isvc/churn.yaml"})
    bare = build(yaml_doc := load_isvc(ROOT / "configs" / "isvc" / "churn.yaml").to_dict())
    assert isinstance(by_path, Application) and isinstance(bare, Application)
    assert yaml_doc["kind"] == "InferenceService"


def test_an_explainer_application_beside_it_leaves_no_explainer_replica_here(monkeypatch) -> None:
    from pipelines.app import build, build_explainer

    monkeypatch.chdir(ROOT)
    alone = build({"isvc": "configs/isvc/churn.yaml"})._bound_deployment  # Ray's own attributes
    assert alone.init_kwargs["explainer"]._bound_deployment.name == "explainer"
    beside = build({"isvc": "configs/isvc/churn.yaml", "explainer_app": "churn-explainer"})._bound_deployment
    assert beside.init_kwargs == {"explainer_app": "churn-explainer"}
    assert [a._bound_deployment.name for a in beside.init_args[1:]] == ["predictor"]
    explainer = build_explainer({"isvc": "configs/isvc/churn.yaml"})._bound_deployment
    assert explainer.name == "explainer" and explainer.init_args[1:] == (None, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"isvc": "configs/isvc/churn-collocated.yaml", "explainer_app": "x"}, "has no spec.explainer"),
        ({"isvc": "configs/isvc/churn.yaml", "explainer_app": 3}, "args.explainer_app: expected the name"),
    ],
)
def test_explainer_app_is_checked(monkeypatch, args, message) -> None:
    from pipelines.app import build

    monkeypatch.chdir(ROOT)
    with pytest.raises(SpecError, match=message):
        build(args)
