"""pipelines.spec: parsing KServe YAML, error paths and suggestions, ignored fields, loaders."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from pipelines.errors import SpecError
from pipelines.spec import (
    InferenceService,
    PredictorSpec,
    isvc_from_serve_args,
    load_isvc,
    parse_isvc,
    parse_kserve_args,
)
from pipelines.spec import models as spec_module
from tests.helpers import SPECS

GOOD = sorted((SPECS / "good").glob("*.yaml"))
BAD = sorted((SPECS / "bad").glob("*.yaml"))


def expected_lines(path: Path) -> list[str]:
    """The ``# expect: ...`` comment lines of a bad fixture."""
    return re.findall(r"^# expect: (.*)$", path.read_text(), flags=re.M)


def doc(predictor: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A minimal valid document, with ``predictor`` and other ``spec`` keys replaced."""
    body = {"predictor": predictor or {"sklearn": {"storageUri": "s3://b/m/"}}, **spec}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m"},
        "spec": body,
    }


def problems_of(document: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_isvc(document)
    return info.value.problems


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_fixtures_parse(path: Path) -> None:
    isvc = load_isvc(path)
    assert isvc.kind == "InferenceService"
    assert isvc.spec.predictor.runtime_name


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_fixtures_name_the_path(path: Path) -> None:
    """Spec-level mistakes fail in load_isvc; value mistakes in annotations fail in build_plan."""
    from pipelines.plan import build_plan

    expected = expected_lines(path)
    assert expected, f"{path.name} has no '# expect:' line"
    with pytest.raises(SpecError) as info:
        build_plan(load_isvc(path))
    message = str(info.value)
    for line in expected:
        assert line in message
    assert all(": " in p for p in info.value.problems)


def test_seed_sklearn_churn() -> None:
    isvc = load_isvc(SPECS / "good" / "seed_sklearn_churn.yaml")
    assert (isvc.metadata.name, isvc.metadata.namespace) == ("churn-classifier", "ml-serving")
    assert isvc.metadata.annotations["autoscaling.knative.dev/minScale"] == "0"
    sk = isvc.spec.predictor.sklearn
    assert sk is not None and sk.storage_uri == "s3://my-models/churn/v1/"
    assert sk.resources is not None and sk.resources.requests is not None
    assert sk.resources.requests.cpu == "500m" and sk.resources.limits.memory == "2Gi"  # type: ignore[union-attr]
    assert isvc.ignored_fields == ["spec.predictor.serviceAccountName"]


def test_seed_huggingface_gpu() -> None:
    isvc = load_isvc(SPECS / "good" / "seed_huggingface_gpu.yaml")
    pred = isvc.spec.predictor
    assert pred.runtime_name == "huggingface"
    assert pred.runtime.protocol_version == "v2"
    assert pred.runtime.args_dict() == {
        "model_name": "sentiment",
        "model_id": "cardiffnlp/twitter-roberta-base-sentiment-latest",
    }
    assert pred.runtime.resources.limits.gpu == "1"  # type: ignore[union-attr]
    assert (pred.min_replicas, pred.max_replicas, pred.scale_target) == (1, 4, 10)


def test_seed_pytorch_canary() -> None:
    pred = load_isvc(SPECS / "good" / "seed_pytorch_canary.yaml").spec.predictor
    assert pred.canary_traffic_percent == 20
    assert pred.new_model is not None and pred.new_model.runtime_name == "pytorch"
    assert pred.new_model.runtime.storage_uri == "s3://my-models/recommender/v2/"


def test_unknown_field_suggests_nearest_name() -> None:
    problems = problems_of(doc({"sklearn": {"storageUrl": "s3://x"}}))
    assert problems == ["spec.predictor.sklearn.storageUrl: unknown field; did you mean 'storageUri'?"]


def test_all_problems_are_collected_one_line_each() -> None:
    document = doc({"minReplica": 1, "sklearn": {"storageUrl": "s3://x", "protocolVersion": "v9"}})
    document["metadata"]["name"] = "Bad_Name"
    problems = problems_of(document)
    assert len(problems) == 4
    assert {p.split(":")[0] for p in problems} == {
        "spec.predictor.minReplica",
        "spec.predictor.sklearn.storageUrl",
        "spec.predictor.sklearn.protocolVersion",
        "metadata.name",
    }


def test_list_indexes_in_paths() -> None:
    problems = problems_of(doc({"sklearn": {"env": [{"name": "A", "value": "1"}, {"value": "2"}]}}))
    assert problems == ["spec.predictor.sklearn.env[1].name: Field required"]
    problems = problems_of(doc({"sklearn": {"args": ["--a=1", "oops", 3]}}))
    assert problems == [
        "spec.predictor.sklearn.args[1]: expected a string like '--name=value', got 'oops'",
        "spec.predictor.sklearn.args[2]: expected a string like '--name=value', got 3",
    ]


def test_keys_with_dots_are_quoted_in_paths() -> None:
    problems = problems_of(doc({"sklearn": {"resources": {"requests": {"nvidia.com/gpus": 1}}}}))
    assert problems == [
        'spec.predictor.sklearn.resources.requests["nvidia.com/gpus"]: unknown field; '
        "did you mean 'nvidia.com/gpu'?"
    ]


@pytest.mark.parametrize(
    "document",
    [
        None,
        3,
        [],
        "text",
        {"metadata": None, "spec": None},
        {"metadata": {"name": "m"}, "spec": []},
        doc({"sklearn": 3}),
        doc({"sklearn": {"args": 5}}),
        doc({"sklearn": {"env": "A=1"}}),
        doc({"minReplicas": "many", "sklearn": {}}),
        doc({"sklearn": {"resources": []}}),
        doc({"model": {"modelFormat": None}}),
        doc(transformer={"custom": {}}),
        doc(explainer={}),
        doc({"sklearn": {}, "newModel": 1, "canaryTrafficPercent": "x"}),
        {"metadata": {"name": "m", "annotations": ["a"]}, "spec": {"predictor": {"sklearn": {}}}},
        {1: 2, "metadata": {"name": "m"}, "spec": {"predictor": {"sklearn": {}}}},
    ],
)
def test_never_a_raw_validation_error(document: Any) -> None:
    problems = problems_of(document)
    assert problems and all(isinstance(p, str) and ": " in p for p in problems)


def test_containers_rejected_with_custom_hint() -> None:
    for component in ("predictor", "transformer", "explainer"):
        body = {"containers": [{"image": "x"}]}
        document = doc(**{component: body}) if component != "predictor" else doc(body)
        problems = problems_of(document)
        line = next(p for p in problems if p.startswith(f"spec.{component}.containers:"))
        assert "can't run here" in line and 'custom: {class: "module:Class"}' in line


@pytest.mark.parametrize("runtime", ["tensorflow", "triton", "paddle", "pmml"])
def test_unsupported_runtimes_rejected_by_name(runtime: str) -> None:
    [line] = problems_of(doc({runtime: {"storageUri": "s3://x"}}))
    assert line.startswith(f"spec.predictor.{runtime}: the '{runtime}' runtime is not supported")
    assert "sklearn, xgboost, lightgbm, pytorch, onnx, huggingface" in line
    [line] = problems_of(doc({"model": {"modelFormat": {"name": runtime}}}))
    assert line.startswith(f"spec.predictor.model.modelFormat.name: the '{runtime}' runtime is not supported")


def test_model_format_name_is_case_insensitive() -> None:
    isvc = parse_isvc(doc({"model": {"modelFormat": {"name": "LightGBM", "version": 3}}}))
    model = isvc.spec.predictor.model
    assert model is not None and model.model_format.name == "lightgbm" and model.model_format.version == "3"


def test_exactly_one_runtime() -> None:
    assert "found none" in problems_of(doc({"minReplicas": 1}))[0]
    assert "found sklearn, onnx" in problems_of(doc({"sklearn": {}, "onnx": {}}))[0]


def test_kubernetes_fields_are_ignored_and_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    document = doc(
        {
            "serviceAccountName": "sa",
            "nodeSelector": {"a": "b"},
            "tolerations": [],
            "sklearn": {"image": "x", "imagePullPolicy": "Always", "runtimeVersion": "1.0"},
        },
        transformer={"affinity": {}, "labels": {"a": "b"}, "custom": {"class": "a.b:C"}},
    )
    document["metadata"]["uid"] = "123"
    knative = "autoscaling.knative.dev/panic-window-percentage"
    document["metadata"]["annotations"] = {knative: "10.0", "team": "x"}
    document["status"] = {"url": "http://x"}
    with caplog.at_level(logging.WARNING, logger="pipelines.spec"):
        isvc = parse_isvc(document)
    assert set(isvc.ignored_fields) == {
        "metadata.uid",
        'metadata.annotations["autoscaling.knative.dev/panic-window-percentage"]',
        "spec.predictor.serviceAccountName",
        "spec.predictor.nodeSelector",
        "spec.predictor.tolerations",
        "spec.predictor.sklearn.image",
        "spec.predictor.sklearn.imagePullPolicy",
        "spec.predictor.sklearn.runtimeVersion",
        "spec.transformer.affinity",
        "spec.transformer.labels",
        "status",
    }
    records = [r for r in caplog.records if r.name == "pipelines.spec"]
    assert len(records) == 1 and "spec.predictor.serviceAccountName" in records[0].getMessage()
    assert isvc.spec.predictor.sklearn.runtime_version == "1.0"  # type: ignore[union-attr]


def test_unknown_isvc_annotation_is_an_error_with_suggestion() -> None:
    document = doc()
    document["metadata"]["annotations"] = {"isvc.dev/coalesce-window": "1"}
    [line] = problems_of(document)
    assert line == (
        'metadata.annotations["isvc.dev/coalesce-window"]: unknown isvc annotation; '
        "did you mean 'isvc.dev/coalesce-window-ms'?"
    )


def test_unquoted_annotation_values_become_strings() -> None:
    document = doc()
    document["metadata"]["annotations"] = {"autoscaling.knative.dev/minScale": 0, "isvc.dev/collocate": True}
    annotations = parse_isvc(document).metadata.annotations
    assert annotations == {"autoscaling.knative.dev/minScale": "0", "isvc.dev/collocate": "true"}


def test_env_accepts_a_mapping_or_kubernetes_list() -> None:
    as_dict = parse_isvc(doc({"sklearn": {"env": {"A": 1, "B": "x"}}})).spec.predictor.runtime
    as_list = parse_isvc(
        doc({"sklearn": {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}]}})
    )
    assert as_dict.env_dict() == as_list.spec.predictor.runtime.env_dict() == {"A": "1", "B": "x"}


def test_parse_kserve_args() -> None:
    assert parse_kserve_args(["--model_name=x", "--foo=3", "--a", "b", "--flag", "--e="]) == {
        "model_name": "x",
        "foo": "3",
        "a": "b",
        "flag": True,
        "e": "",
    }
    with pytest.raises(ValueError, match=r"\[0\]"):
        parse_kserve_args(["positional"])


def test_custom_class_must_be_an_import_string() -> None:
    [line] = problems_of(doc({"custom": {"class": "not a class"}}))
    assert line.startswith("spec.predictor.custom.class: expected an import string 'module:Class'")
    [line] = problems_of(doc(transformer={"custom": {"storageUri": "s3://x"}}))
    assert line == "spec.transformer.custom.class: Field required"


def test_explainer_types() -> None:
    isvc = parse_isvc(doc(explainer={"alibi": {"type": "KernelShap", "config": {"a": 1}}}))
    assert isvc.spec.explainer is not None and isvc.spec.explainer.kind == "alibi"
    [line] = problems_of(doc(explainer={"shap": {"type": "Kernel"}}))
    assert line.startswith("spec.explainer.shap.type: 'Kernel' is not one of")
    [line] = problems_of(doc(explainer={"alibi": {"type": "TreeShap"}, "shap": {"type": "TreeShap"}}))
    assert line == "spec.explainer: set exactly one of alibi or shap"


def test_namespace_defaults_and_component_scaling_fields() -> None:
    isvc = parse_isvc(doc({"minReplicas": 0, "maxReplicas": 3, "scaleMetric": "rps", "sklearn": {}}))
    assert isvc.metadata.namespace == "default"
    assert (isvc.spec.predictor.min_replicas, isvc.spec.predictor.scale_metric) == (0, "rps")


def test_load_sources_path_text_dict(tmp_path: Path) -> None:
    text = (SPECS / "good" / "seed_sklearn_churn.yaml").read_text()
    file = tmp_path / "churn.yaml"
    file.write_text(text)
    names = {
        load_isvc(file).metadata.name,
        load_isvc(str(file)).metadata.name,
        load_isvc(text).metadata.name,
        load_isvc(yaml.safe_load(text)).metadata.name,
    }
    assert names == {"churn-classifier"}
    with pytest.raises(SpecError, match="cannot read"):
        load_isvc(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_isvc("a: [unclosed\n")
    with pytest.raises(SpecError, match="no such file"):
        load_isvc("configs/isvc/churn")


def test_multi_document_selection() -> None:
    seeds = [
        (SPECS / "good" / n).read_text() for n in ("seed_sklearn_churn.yaml", "seed_pytorch_canary.yaml")
    ]
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    assert load_isvc(config_map + "---\n" + seeds[0]).metadata.name == "churn-classifier"
    both = "---\n".join([config_map, *seeds])
    with pytest.raises(SpecError, match=r"2 InferenceService documents \(churn-classifier, recommender\)"):
        load_isvc(both)
    assert load_isvc(both, name="recommender").spec.predictor.runtime_name == "pytorch"
    with pytest.raises(SpecError, match="no InferenceService named 'nope'"):
        load_isvc(both, name="nope")
    with pytest.raises(SpecError, match="no InferenceService document"):
        load_isvc(config_map)


def test_to_dict_round_trips() -> None:
    for path in GOOD:
        isvc = load_isvc(path)
        again = load_isvc(isvc.to_dict())
        assert again.model_dump() == isvc.model_dump()  # ignored_fields differ: they were dropped
        assert (
            again.to_dict() == isvc.to_dict() and again.to_dict()["apiVersion"] == "serving.kserve.io/v1beta1"
        )


def test_isvc_from_serve_args(tmp_path: Path) -> None:
    (tmp_path / "isvc").mkdir()
    (tmp_path / "isvc" / "churn.yaml").write_text((SPECS / "good" / "seed_sklearn_churn.yaml").read_text())
    by_path = isvc_from_serve_args({"isvc": "isvc/churn.yaml"}, base_dir=tmp_path)
    inline = isvc_from_serve_args({"isvc": by_path.to_dict()})
    bare = isvc_from_serve_args(by_path.to_dict())  # the KServe document itself as args
    assert by_path.metadata.name == inline.metadata.name == bare.metadata.name == "churn-classifier"
    assert bare.to_dict() == by_path.to_dict()
    with pytest.raises(SpecError) as info:
        isvc_from_serve_args({"isvs": {}})
    assert info.value.problems == [
        "args.isvs: unknown key; did you mean 'isvc'?",
        "args.isvc: required (an InferenceService mapping or a path to its YAML), unless args "
        "is the InferenceService document itself (apiVersion, kind, metadata, spec)",
    ]
    with pytest.raises(SpecError) as info:
        isvc_from_serve_args(
            {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "spec": {}}
        )
    assert "metadata: Field required" in info.value.problems
    with pytest.raises(SpecError, match="cannot read"):
        isvc_from_serve_args({"isvc": "isvc/missing.yaml"}, base_dir=tmp_path)


def test_python_construction_by_field_name() -> None:
    pred = PredictorSpec(sklearn={"storage_uri": "s3://x"}, min_replicas=2)  # type: ignore[arg-type]
    assert pred.runtime.storage_uri == "s3://x" and pred.min_replicas == 2


def test_every_field_has_a_description() -> None:
    models = [m for m in vars(spec_module).values() if isinstance(m, type) and issubclass(m, BaseModel)]
    assert InferenceService in models
    missing = [f"{m.__name__}.{n}" for m in models for n, f in m.model_fields.items() if not f.description]
    assert missing == []
