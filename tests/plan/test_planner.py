"""pipelines.plan.build_plan: InferenceService → frozen ServicePlan, no Ray."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from pipelines.errors import SpecError
from pipelines.plan import DEFAULT_MAX_ONGOING, Batching, Resources, ServicePlan, build_plan
from pipelines.spec import load_isvc, parse_cpu, parse_isvc, parse_memory, parse_quantity
from predictors.registry import RUNTIME_ALIASES
from tests.helpers import SPECS


def plan_of(
    predictor: dict[str, Any] | None = None, annotations: dict[str, str] | None = None, **spec: Any
) -> ServicePlan:
    document = {
        "metadata": {"name": "m", "namespace": "ns", "annotations": annotations or {}},
        "spec": {"predictor": predictor or {"sklearn": {"storageUri": "s3://b/m/"}}, **spec},
    }
    return build_plan(parse_isvc(document))


def plan_problems(*args: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        plan_of(*args, **kwargs)
    return info.value.problems


def test_seed_sklearn_churn_serverless() -> None:
    plan = build_plan(load_isvc(SPECS / "good" / "seed_sklearn_churn.yaml"))
    assert (plan.app_name, plan.deployment_mode) == ("ml-serving-churn-classifier", "Serverless")
    pred = plan.predictor
    assert pred.runtime == "predictors.sklearn:SKLearnPredictor" and pred.model_format == "sklearn"
    assert pred.storage_uri == "s3://my-models/churn/v1/" and pred.protocol == "v1"
    scaling = pred.scaling
    assert (scaling.autoscale, scaling.min_replicas, scaling.max_replicas) == (True, 0, 5)
    assert scaling.target_ongoing_requests == 20.0
    assert scaling.max_ongoing_requests == DEFAULT_MAX_ONGOING
    assert pred.resources == Resources(num_cpus=0.5, num_gpus=None, memory_bytes=512 * 2**20)
    assert plan.ignored_fields == ("spec.predictor.serviceAccountName",)


def seed_as_sklearn(name: str) -> ServicePlan:
    """A seed document with its (not yet built) runtime key swapped for sklearn."""
    text = (SPECS / "good" / name).read_text()
    for runtime in ("huggingface:", "pytorch:", "XGBoost"):
        text = text.replace(runtime, "sklearn:" if runtime.endswith(":") else "sklearn")
    return build_plan(parse_isvc(yaml.safe_load(text)))


@pytest.mark.parametrize(
    ("name", "runtime"),
    [("seed_huggingface_gpu.yaml", "huggingface"), ("seed_pytorch_canary.yaml", "pytorch")],
)
def test_runtimes_not_built_yet_are_errors_naming_them(
    name: str, runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(RUNTIME_ALIASES, runtime, raising=False)  # a KServe name with no module yet
    with pytest.raises(SpecError) as info:
        build_plan(load_isvc(SPECS / "good" / name))
    assert info.value.problems[0].startswith(
        f"spec.predictor.{runtime}: the '{runtime}' runtime is not built yet"
    )
    assert "available: sklearn" in info.value.problems[0]


def test_model_format_not_built_yet_names_the_format_field(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in RUNTIME_ALIASES if n != "sklearn"]:
        monkeypatch.delitem(RUNTIME_ALIASES, name)
    problems = plan_problems({"model": {"modelFormat": {"name": "onnx"}}})
    assert problems == [
        "spec.predictor.model.modelFormat.name: the 'onnx' runtime is not built yet; available: sklearn, "
        "or custom: {class: 'module:Class'} (your own predictor class)"
    ]


def test_seed_huggingface_raw_deployment_gpu() -> None:
    plan = seed_as_sklearn("seed_huggingface_gpu.yaml")
    pred = plan.predictor
    assert plan.deployment_mode == "RawDeployment"
    assert pred.runtime == "predictors.sklearn:SKLearnPredictor" and pred.protocol == "v2"
    assert pred.args == {
        "model_name": "sentiment",
        "model_id": "cardiffnlp/twitter-roberta-base-sentiment-latest",
    }
    assert (pred.scaling.autoscale, pred.scaling.min_replicas, pred.scaling.max_replicas) == (False, 1, 1)
    assert pred.resources == Resources(num_cpus=2.0, num_gpus=1.0, memory_bytes=8 * 2**30)
    assert "spec.predictor.maxReplicas (RawDeployment: fixed replicas)" in plan.ignored_fields


def test_seed_pytorch_canary() -> None:
    plan = seed_as_sklearn("seed_pytorch_canary.yaml")
    assert plan.canary_traffic_percent == 20
    assert plan.canary is not None and plan.canary.storage_uri == "s3://my-models/recommender/v2/"
    assert plan.predictor.storage_uri == "s3://my-models/recommender/v1/"
    assert plan.canary.runtime == plan.predictor.runtime == "predictors.sklearn:SKLearnPredictor"
    assert (plan.predictor.deployment, plan.canary.deployment) == ("predictor", "predictor-canary")
    assert plan.canary.protocol == "v2"


@pytest.mark.parametrize("runtime", sorted(RUNTIME_ALIASES))
def test_runtime_alias_table(runtime: str) -> None:
    assert plan_of({runtime: {}}).predictor.runtime == RUNTIME_ALIASES[runtime]
    by_format = plan_of({"model": {"modelFormat": {"name": runtime}}}).predictor
    assert (by_format.runtime, by_format.model_format) == (RUNTIME_ALIASES[runtime], runtime)


def test_custom_class_used_as_is_without_importing() -> None:
    pred = plan_of({"custom": {"class": "no_such_pkg.models:Thing", "args": {"k": 1}}}).predictor
    assert (pred.runtime, pred.model_format, pred.args) == ("no_such_pkg.models:Thing", "custom", {"k": 1})


def test_serverless_defaults_one_replica() -> None:
    scaling = plan_of().predictor.scaling
    assert (scaling.autoscale, scaling.min_replicas, scaling.max_replicas) == (True, 1, 1)
    assert plan_of({"maxReplicas": 3, "sklearn": {}}).predictor.scaling.max_replicas == 3


def test_component_fields_override_annotations() -> None:
    annotations = {
        "autoscaling.knative.dev/minScale": "2",
        "autoscaling.knative.dev/maxScale": "8",
        "autoscaling.knative.dev/target": "5",
        "autoscaling.knative.dev/metric": "rps",
    }
    from_annotations = plan_of(annotations=annotations).predictor.scaling
    assert (from_annotations.min_replicas, from_annotations.max_replicas) == (2, 8)
    assert (from_annotations.target_ongoing_requests, from_annotations.metric) == (5.0, "rps")
    component = {
        "minReplicas": 0,
        "maxReplicas": 3,
        "scaleTarget": 7,
        "scaleMetric": "concurrency",
        "sklearn": {},
    }
    scaling = plan_of(component, annotations=annotations).predictor.scaling
    assert (scaling.min_replicas, scaling.max_replicas, scaling.target_ongoing_requests) == (0, 3, 7.0)
    assert scaling.metric == "concurrency"


def test_hyphenated_knative_annotations() -> None:
    annotations = {"autoscaling.knative.dev/min-scale": "0", "autoscaling.knative.dev/max-scale": "4"}
    scaling = plan_of(annotations=annotations).predictor.scaling
    assert (scaling.min_replicas, scaling.max_replicas) == (0, 4)


def test_max_scale_zero_means_unset() -> None:
    annotations = {"autoscaling.knative.dev/minScale": "2", "autoscaling.knative.dev/maxScale": "0"}
    scaling = plan_of(annotations=annotations).predictor.scaling
    assert (scaling.min_replicas, scaling.max_replicas) == (2, 2)


@pytest.mark.parametrize("mode", ["RawDeployment", "Standard", "rawdeployment"])
def test_raw_deployment_fixed_replicas_never_zero(mode: str) -> None:
    annotations = {"serving.kserve.io/deploymentMode": mode}
    assert plan_of(annotations=annotations).deployment_mode == "RawDeployment"
    for given, expected in ((None, 1), (0, 1), (3, 3)):
        predictor = {"sklearn": {}} if given is None else {"minReplicas": given, "sklearn": {}}
        scaling = plan_of(predictor, annotations=annotations).predictor.scaling
        assert (scaling.autoscale, scaling.min_replicas, scaling.max_replicas) == (False, expected, expected)


@pytest.mark.parametrize("mode", ["Serverless", "Knative"])
def test_serverless_names(mode: str) -> None:
    plan = plan_of(annotations={"serving.kserve.io/deploymentMode": mode})
    assert plan.deployment_mode == "Serverless" and plan.predictor.scaling.autoscale


def test_concurrency_and_timeout() -> None:
    scaling = plan_of({"containerConcurrency": 12, "timeout": 30, "sklearn": {}}).predictor.scaling
    assert (scaling.max_ongoing_requests, scaling.timeout_s) == (12, 30.0)
    assert plan_of({"containerConcurrency": 0, "sklearn": {}}).predictor.scaling.max_ongoing_requests == (
        DEFAULT_MAX_ONGOING
    )


@pytest.mark.parametrize(
    ("annotation", "value", "expected"),
    [
        ("autoscaling.knative.dev/target", "fast", "expected a number > 0, got 'fast'"),
        ("autoscaling.knative.dev/target", "0", "expected a number > 0"),
        ("autoscaling.knative.dev/metric", "gpu", "expected concurrency or rps or cpu or memory"),
        ("autoscaling.knative.dev/minScale", "-1", "expected an integer >= 0"),
        ("autoscaling.knative.dev/maxScale", "1.5", "expected an integer >= 0"),
        ("isvc.dev/collocate", "yes", 'expected "true" or "false"'),
        ("isvc.dev/coalesce-window-ms", "soon", "expected milliseconds >= 0"),
        ("isvc.dev/coalesce-max-rows", "0", "expected an integer >= 1"),
    ],
)
def test_bad_annotation_values_name_the_annotation(annotation: str, value: str, expected: str) -> None:
    [line] = plan_problems(annotations={annotation: value})
    assert line.startswith(f'metadata.annotations["{annotation}"]: {expected}')


def test_bad_values_are_all_reported() -> None:
    annotations = {"autoscaling.knative.dev/target": "x", "isvc.dev/coalesce-max-rows": "y"}
    problems = plan_problems({"minReplicas": 4, "maxReplicas": 2, "sklearn": {}}, annotations=annotations)
    assert len(problems) == 3
    assert "spec.predictor: maxReplicas (2) is below minReplicas (3)" not in problems
    assert "spec.predictor: maxReplicas (2) is below minReplicas (4)" in problems


def test_isvc_annotations() -> None:
    plan = plan_of()
    assert (plan.collocate, plan.coalesce_window_ms, plan.coalesce_max_rows) == (False, 1.0, 1024)
    annotations = {
        "isvc.dev/collocate": "True",
        "isvc.dev/coalesce-window-ms": "0",
        "isvc.dev/coalesce-max-rows": "64",
    }
    plan = plan_of(annotations=annotations)
    assert (plan.collocate, plan.coalesce_window_ms, plan.coalesce_max_rows) == (True, 0.0, 64)


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2.0), ("1.5", 1.5), ("100m", 0.1), ("1k", 1000.0), ("1e3", 1000.0), (".5", 0.5)],
)
def test_parse_cpu(text: str, value: float) -> None:
    assert parse_cpu(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "value"),
    [("512Mi", 512 * 2**20), ("2Gi", 2 * 2**30), ("1G", 10**9), ("128974848", 128974848), ("1Ki", 1024)],
)
def test_parse_memory(text: str, value: int) -> None:
    assert parse_memory(text) == value


def test_parse_quantity_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity("lots")


def test_resources_requests_then_limits_runtime_then_component() -> None:
    resources = {"requests": {"cpu": "250m"}, "limits": {"cpu": "4", "memory": "1Gi", "nvidia.com/gpu": 2}}
    assert plan_of({"sklearn": {"resources": resources}}).predictor.resources == Resources(
        num_cpus=0.25, num_gpus=2.0, memory_bytes=2**30
    )
    component = {"resources": {"requests": {"cpu": "3", "memory": "1G"}}, "sklearn": {"resources": resources}}
    assert plan_of(component).predictor.resources == Resources(
        num_cpus=0.25, num_gpus=2.0, memory_bytes=10**9
    )
    only_component = {"resources": {"limits": {"cpu": "3"}}, "sklearn": {}}
    assert plan_of(only_component).predictor.resources.num_cpus == 3.0


def test_batcher_to_batching() -> None:
    batching = plan_of({"batcher": {"maxBatchSize": 16, "maxLatency": 50}, "sklearn": {}}).predictor.batching
    assert batching == Batching(max_batch_size=16, max_latency_ms=50.0)
    assert plan_of({"batcher": {}, "sklearn": {}}).predictor.batching == Batching()
    assert plan_of().predictor.batching is None


def test_kserve_args_and_env() -> None:
    pred = plan_of({"sklearn": {"args": ["--model_name=x", "--foo=3"], "env": {"A": "1"}}}).predictor
    assert pred.args == {"model_name": "x", "foo": "3"}
    assert pred.env == {"A": "1"}


def test_protocol_version() -> None:
    assert plan_of({"sklearn": {"protocolVersion": "v2"}}).predictor.protocol == "v2"
    assert plan_of({"sklearn": {}}).predictor.protocol == "v1"


def test_canary_inherits_unset_component_fields() -> None:
    predictor = {
        "minReplicas": 2,
        "containerConcurrency": 8,
        "batcher": {"maxBatchSize": 4},
        "canaryTrafficPercent": 10,
        "sklearn": {"resources": {"requests": {"cpu": "2"}}},
        "newModel": {"minReplicas": 1, "sklearn": {"storageUri": "s3://new/"}},
    }
    plan = plan_of(predictor)
    canary = plan.canary
    assert canary is not None and plan.canary_traffic_percent == 10
    assert (canary.scaling.min_replicas, canary.scaling.max_ongoing_requests) == (1, 8)
    assert canary.batching == Batching(max_batch_size=4)
    assert canary.resources.num_cpus == 2.0
    assert plan_of({**predictor, "canaryTrafficPercent": 0}).canary_traffic_percent == 0


def test_transformer_and_explainer_nodes() -> None:
    plan = build_plan(load_isvc(SPECS / "good" / "churn_full_pipeline.yaml"))
    assert plan.transformer is not None and plan.explainer is not None
    assert plan.transformer.class_path == "transformers_.churn:ChurnTransformer"
    assert plan.transformer.args == {"threshold_high": 0.7} and plan.transformer.env == {"LOG_LEVEL": "debug"}
    assert (plan.transformer.scaling.min_replicas, plan.transformer.scaling.max_replicas) == (2, 6)
    assert plan.transformer.scaling.max_ongoing_requests == 64
    assert (plan.explainer.kind, plan.explainer.type) == ("alibi", "AnchorTabular")
    assert plan.explainer.config == {"threshold": "0.9"}
    assert plan.predictor.env == {"OMP_NUM_THREADS": "1"}  # valueFrom entries are left out
    assert plan.predictor.resources == Resources(num_cpus=1.0, memory_bytes=10**9)
    assert (plan.collocate, plan.coalesce_window_ms, plan.coalesce_max_rows) == (True, 2.5, 512)
    assert plan.predictor.scaling.metric == "rps" and plan.predictor.scaling.timeout_s == 30.0
    assert "spec.predictor.sklearn.image" in plan.ignored_fields


def test_shap_explainer_and_custom_predictor() -> None:
    plan = build_plan(load_isvc(SPECS / "good" / "custom_predictor_shap.yaml"))
    assert plan.predictor.runtime == "my_models.ranker:Ranker" and plan.predictor.args == {"top_k": 10}
    assert plan.explainer is not None and (plan.explainer.kind, plan.explainer.type) == ("shap", "KernelShap")
    assert plan.namespace == "default" and plan.app_name == "default-ranker"


def test_model_format_standard_fixture() -> None:
    plan = seed_as_sklearn("model_format_standard.yaml")
    pred = plan.predictor
    assert pred.runtime == "predictors.sklearn:SKLearnPredictor" and pred.model_format == "sklearn"
    assert (pred.scaling.min_replicas, pred.scaling.autoscale, pred.scaling.max_ongoing_requests) == (
        3,
        False,
        16,
    )
    assert pred.args == {"nthread": "2"}
    assert "spec.predictor.model.runtime" in plan.ignored_fields


def test_plan_is_frozen_and_pure() -> None:
    plan = plan_of()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "x"  # type: ignore[misc]
    assert plan_of() == plan


def test_seeds_plan_to_their_own_runtimes() -> None:
    hf = build_plan(load_isvc(SPECS / "good" / "seed_huggingface_gpu.yaml")).predictor
    assert (hf.runtime, hf.model_format) == ("predictors.huggingface:HuggingFacePredictor", "huggingface")
    # KServe: --model_id wins over storageUri; the runtime reads it from the local HF cache
    assert hf.storage_uri == "s3://my-models/sentiment/v2/"
    assert hf.args["model_id"] == "cardiffnlp/twitter-roberta-base-sentiment-latest"
    plan = build_plan(load_isvc(SPECS / "good" / "seed_pytorch_canary.yaml"))
    assert plan.canary is not None
    assert plan.predictor.runtime == plan.canary.runtime == "predictors.pytorch:PyTorchPredictor"


def test_hf_storage_uri_becomes_the_model_id_of_the_huggingface_runtime() -> None:
    pred = plan_of({"huggingface": {"storageUri": "hf://acme/tiny", "args": ["--task=fill_mask"]}}).predictor
    assert (pred.storage_uri, pred.args) == (None, {"model_id": "hf://acme/tiny", "task": "fill_mask"})
    explicit = {"storageUri": "hf://acme/tiny", "args": ["--model_id=acme/other"]}
    by_format = plan_of({"model": {"modelFormat": {"name": "huggingface"}, **explicit}}).predictor
    assert by_format.args == {"model_id": "acme/other"}
