"""CPU replicas stay off GPU nodes: a label selector any unlabelled node matches."""

from __future__ import annotations

import pytest

from pipelines._ray import options
from pipelines._ray.options import CPU_REPLICA_SELECTOR, POOL_LABEL, deployment_options
from pipelines.plan import Resources, Scaling, build_plan
from pipelines.spec import load_isvc
from tests.helpers import ROOT


def selector(resources: Resources) -> dict[str, str] | None:
    return deployment_options(Scaling(), resources)["ray_actor_options"].get("label_selector")


def test_cpu_replicas_avoid_gpu_labelled_nodes_and_gpu_replicas_are_free() -> None:
    assert CPU_REPLICA_SELECTOR == {POOL_LABEL: "!gpu"} and POOL_LABEL == "isvc.dev/pool"
    assert selector(Resources()) == {"isvc.dev/pool": "!gpu"}
    assert selector(Resources(num_cpus=2, memory_bytes=2**30)) == {"isvc.dev/pool": "!gpu"}
    assert selector(Resources(num_gpus=1)) is None  # its GPU request already places it
    assert selector(Resources(num_gpus=0.25)) is None
    a, b = (deployment_options(Scaling(), Resources())["ray_actor_options"] for _ in range(2))
    assert a["label_selector"] is not b["label_selector"]  # no shared dict Serve could mutate


def test_a_gpu_request_dropped_on_a_cpu_cluster_makes_a_cpu_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options, "cluster_gpus", lambda: 0.0)
    actor = deployment_options(Scaling(), Resources(num_gpus=1))["ray_actor_options"]
    assert "num_gpus" not in actor and actor["label_selector"] == {"isvc.dev/pool": "!gpu"}


def test_the_selector_matches_unlabelled_and_cpu_nodes_only() -> None:
    """Ray's own matcher (the one Serve's scheduler calls): a laptop's unlabelled node still fits."""
    from ray._private.label_utils import validate_label_selector
    from ray._raylet import node_labels_match_selector  # type: ignore[attr-defined]

    assert validate_label_selector(CPU_REPLICA_SELECTOR) is None
    assert node_labels_match_selector({}, CPU_REPLICA_SELECTOR)
    assert node_labels_match_selector({"ray.io/node-id": "abc"}, CPU_REPLICA_SELECTOR)
    assert node_labels_match_selector({POOL_LABEL: "cpu"}, CPU_REPLICA_SELECTOR)
    assert not node_labels_match_selector({POOL_LABEL: "gpu"}, CPU_REPLICA_SELECTOR)


def test_the_built_app_places_each_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    """sentiment.yaml: a GPU predictor without a selector, the ingress (CPU) with it."""
    from pipelines.app import build

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(options, "cluster_gpus", lambda: 1.0)
    app = build({"isvc": "configs/isvc/sentiment.yaml"})
    ingress = app._bound_deployment.ray_actor_options  # Ray's own attributes
    predictor = app._bound_deployment.init_args[1]._bound_deployment.ray_actor_options
    assert predictor["num_gpus"] == 1 and "label_selector" not in predictor
    assert "num_gpus" not in ingress and ingress["label_selector"] == {"isvc.dev/pool": "!gpu"}
    plan = build_plan(load_isvc(ROOT / "configs" / "isvc" / "sentiment.yaml"))
    assert plan.predictor.resources.num_gpus == 1
