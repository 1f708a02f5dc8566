"""The explainer node: TreeShap only where it can explain the request's features; queueing."""

from __future__ import annotations

import pytest

from pipelines.errors import SpecError
from pipelines.plan import build_plan
from pipelines.plan.build import EXPLAINER_MAX_ONGOING
from pipelines.spec import parse_isvc


def doc(explainer: dict, transformer: bool = True) -> dict:
    spec: dict = {"predictor": {"sklearn": {"storageUri": "s3://b/m"}}, "explainer": explainer}
    if transformer:
        spec["transformer"] = {"custom": {"class": "transformers_.churn:ChurnTransformer"}}
    return {"metadata": {"name": "m"}, "spec": spec}


def test_tree_shap_behind_a_transformer_is_an_error_pointing_to_kernel_shap() -> None:
    with pytest.raises(SpecError) as info:
        build_plan(parse_isvc(doc({"shap": {"type": "TreeShap"}})))
    [line] = info.value.problems
    assert line.startswith("spec.explainer.shap.type: TreeShap reads the model") and "use KernelShap" in line
    plan = build_plan(parse_isvc(doc({"shap": {"type": "TreeShap"}}, transformer=False)))
    assert plan.explainer is not None and plan.explainer.type == "TreeShap"


def test_explainer_replicas_hold_few_requests_unless_container_concurrency_says() -> None:
    plan = build_plan(parse_isvc(doc({"alibi": {"type": "AnchorTabular"}})))
    assert plan.explainer is not None
    assert plan.explainer.scaling.max_ongoing_requests == EXPLAINER_MAX_ONGOING
    plan = build_plan(
        parse_isvc(doc({"alibi": {"type": "AnchorTabular"}, "containerConcurrency": 8, "timeout": 9}))
    )
    assert plan.explainer is not None
    assert (plan.explainer.scaling.max_ongoing_requests, plan.explainer.scaling.timeout_s) == (8, 9.0)


def test_the_explainer_uses_its_own_model_copy_unless_the_predictor_has_a_gpu() -> None:
    plan = build_plan(parse_isvc(doc({"alibi": {"type": "AnchorTabular"}})))
    assert plan.explainer is not None and plan.explainer.model_access == "local"
    gpu = doc({"alibi": {"type": "AnchorTabular"}})
    gpu["spec"]["predictor"]["sklearn"]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    plan = build_plan(parse_isvc(gpu))
    assert plan.explainer is not None and plan.explainer.model_access == "deployment"
    gpu["metadata"]["annotations"] = {"isvc.dev/explainer-model": "local"}
    plan = build_plan(parse_isvc(gpu))
    assert plan.explainer is not None and plan.explainer.model_access == "local"
    gpu["metadata"]["annotations"] = {"isvc.dev/explainer-model": "remote"}
    with pytest.raises(SpecError, match='isvc.dev/explainer-model.*expected "local" or "deployment"'):
        build_plan(parse_isvc(gpu))


def test_a_gpu_predictor_batches_by_default_and_a_cpu_one_does_not() -> None:
    from pipelines.plan import Batching

    plan = build_plan(parse_isvc(doc({"alibi": {"type": "AnchorTabular"}}, transformer=False)))
    assert plan.predictor.batching is None
    gpu = doc({"alibi": {"type": "AnchorTabular"}}, transformer=False)
    gpu["spec"]["predictor"]["sklearn"]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    assert build_plan(parse_isvc(gpu)).predictor.batching == Batching(max_batch_size=32, max_latency_ms=5.0)
    gpu["spec"]["predictor"]["batcher"] = {"maxBatchSize": 8}
    assert build_plan(parse_isvc(gpu)).predictor.batching == Batching(max_batch_size=8, max_latency_ms=5.0)
