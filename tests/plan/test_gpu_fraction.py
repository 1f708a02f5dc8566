"""``resources.limits["nvidia.com/gpu"]`` → the predictor's ``num_gpus``; ``isvc.dev/gpu-fraction``
shares one GPU between replicas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pipelines.errors import SpecError
from pipelines.plan import build_plan
from pipelines.spec import isvc_from_serve_args

BASE: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "churn", "namespace": "ns", "annotations": {}},
    "spec": {
        "transformer": {
            "minReplicas": 2,
            "maxReplicas": 3,
            "custom": {"class": "transformers_.churn:ChurnTransformer", "storageUri": "/t"},
        },
        "predictor": {
            "minReplicas": 1,
            "maxReplicas": 1,
            "sklearn": {
                "storageUri": "/p",
                "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}},
            },
        },
    },
}


def plan_of(annotations: dict[str, str] | None = None, gpu: str | None = "1", canary: bool = False) -> Any:
    doc = copy.deepcopy(BASE)
    doc["metadata"]["annotations"] = annotations or {}
    limits = doc["spec"]["predictor"]["sklearn"]["resources"]["limits"]
    if gpu is None:
        del limits["nvidia.com/gpu"]
    else:
        limits["nvidia.com/gpu"] = gpu
    if canary:
        doc["spec"]["predictor"]["canaryTrafficPercent"] = 10
        doc["spec"]["predictor"]["newModel"] = {"sklearn": {"storageUri": "/p2"}}
    return build_plan(isvc_from_serve_args(doc))


def test_the_gpu_limit_is_the_predictors_alone_and_each_component_scales_by_its_own() -> None:
    plan = plan_of()
    assert plan.predictor.resources.num_gpus == 1.0
    assert plan.ingress.resources.num_gpus is None and not plan.ingress.collocated
    assert (plan.ingress.scaling.min_replicas, plan.ingress.scaling.max_replicas) == (2, 3)
    assert (plan.predictor.scaling.min_replicas, plan.predictor.scaling.max_replicas) == (1, 1)


def test_a_fraction_of_one_gpu_per_replica_canary_included() -> None:
    plan = plan_of({"isvc.dev/gpu-fraction": "0.25"}, canary=True)
    assert plan.predictor.resources.num_gpus == 0.25
    assert plan.canary is not None and plan.canary.resources.num_gpus == 0.25  # inherited, then shared
    assert plan.predictor.resources.num_cpus == 1.0  # the rest of the request stands
    assert plan.ingress.resources.num_gpus is None
    assert plan_of({"isvc.dev/gpu-fraction": "1"}).predictor.resources.num_gpus == 1.0


def test_the_collocated_ingress_takes_the_shared_gpu() -> None:
    plan = plan_of({"isvc.dev/gpu-fraction": "0.5", "isvc.dev/collocate": "true"})
    assert plan.ingress.collocated and plan.ingress.resources.num_gpus == 0.5


@pytest.mark.parametrize("value", ["0", "-0.5", "1.5", "half", "nan", ""])
def test_a_bad_fraction_names_the_annotation(value: str) -> None:
    with pytest.raises(SpecError) as err:
        plan_of({"isvc.dev/gpu-fraction": value})
    assert str(err.value).count('metadata.annotations["isvc.dev/gpu-fraction"]: expected a fraction') == 1


def test_a_fraction_without_a_gpu_request_is_an_error() -> None:
    with pytest.raises(SpecError, match=r'"isvc.dev/gpu-fraction"\]: no predictor asks for a GPU'):
        plan_of({"isvc.dev/gpu-fraction": "0.5"}, gpu=None)


def test_more_than_one_gpu_must_be_whole() -> None:
    assert plan_of(gpu="2").predictor.resources.num_gpus == 2.0
    assert plan_of(gpu="500m").predictor.resources.num_gpus == 0.5  # a quantity below 1 is Ray's fraction
    with pytest.raises(SpecError, match=r'spec.predictor.sklearn.resources: "nvidia.com/gpu" above 1'):
        plan_of(gpu="1.5")


def test_a_misspelt_annotation_is_caught_by_the_lint() -> None:
    with pytest.raises(SpecError, match="gpu-fraction"):
        plan_of({"isvc.dev/gpu-fractions": "0.5"})
