"""A predictor asking for a GPU on a Ray cluster without one runs on CPU, with one log line."""

from __future__ import annotations

import logging
import re

import pytest

from pipelines._ray import options
from pipelines._ray.options import cluster_gpus, deployment_options, gpus_or_cpu
from pipelines.plan import build_plan
from pipelines.spec import load_isvc
from tests.helpers import ROOT


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "isvc.app"]


def test_gpus_are_dropped_only_when_the_cluster_has_none(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="isvc.app"):
        assert gpus_or_cpu(1.0, 4.0, "deployment 'predictor'") == 1.0
        assert gpus_or_cpu(0.5, None, "deployment 'predictor'") == 0.5  # cluster unknown: as asked
        assert gpus_or_cpu(None, 0.0) is None
        assert lines(caplog) == []
        assert gpus_or_cpu(1.0, 0.0, "deployment 'predictor'") is None
    assert lines(caplog) == [
        "isvc: no GPU in this Ray cluster; deployment 'predictor' asked for 1 GPU and runs on CPU"
    ]


@pytest.mark.parametrize(("available", "expected"), [(0.0, None), (2.0, 1.0), (None, 1.0)])
def test_deployment_options_ask_the_cluster(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, available, expected
) -> None:
    monkeypatch.setattr(options, "cluster_gpus", lambda: available)
    plan = build_plan(load_isvc(ROOT / "configs" / "isvc" / "sentiment.yaml"))
    with caplog.at_level(logging.INFO, logger="isvc.app"):
        opts = deployment_options(
            plan.predictor.scaling, plan.predictor.resources, deployment=plan.predictor.deployment
        )
        ingress = deployment_options(plan.ingress.scaling, plan.ingress.resources)
    assert opts["ray_actor_options"].get("num_gpus") == expected
    assert opts["ray_actor_options"]["num_cpus"] == 1.0  # the CPU request stands
    assert "num_gpus" not in ingress["ray_actor_options"]
    assert len(lines(caplog)) == (1 if expected is None else 0)
    if expected is None:
        assert "deployment 'predictor' asked for 1 GPU and runs on CPU" in lines(caplog)[0]


def test_the_built_app_runs_the_predictor_on_cpu(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from pipelines.app import build

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(options, "cluster_gpus", lambda: 0.0)
    with caplog.at_level(logging.INFO, logger="isvc.app"):
        app = build({"isvc": "configs/isvc/sentiment.yaml"})
    predictor = app._bound_deployment.init_args[1]  # ingress.bind(plan, predictor) (Ray's own attribute)
    assert "num_gpus" not in predictor._bound_deployment.ray_actor_options
    (line,) = [m for m in lines(caplog) if "no GPU" in m]  # the builder may name the deployment
    assert re.fullmatch(
        r"isvc: no GPU in this Ray cluster; (a deployment|deployment 'predictor') asked for 1 GPU "
        r"and runs on CPU",
        line,
    )


def test_cluster_gpus_reads_the_connected_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    assert not ray.is_initialized() and cluster_gpus() is None  # the unit tier never starts Ray
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0, "memory": 1e9})
    assert cluster_gpus() == 0.0
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 2.0})
    assert cluster_gpus() == 2.0

    def broken() -> dict[str, float]:
        raise ConnectionError("gcs gone")

    monkeypatch.setattr(ray, "cluster_resources", broken)
    assert cluster_gpus() is None
