"""pipelines.spec.trained and the multi-model plan: TrainedModel documents, their error paths, the cap."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from pipelines.errors import SpecError
from pipelines.multimodel import build_multimodel_plan, runtime_entry
from pipelines.plan import PredictorNode
from pipelines.spec import isvc_from_serve_args, load_isvc
from pipelines.spec.trained import (
    DEFAULT_MODELS_PER_REPLICA,
    load_multimodel,
    multimodel_from_serve_args,
    parse_model_source,
)
from tests.helpers import ROOT

SHIPPED = ROOT / "configs" / "isvc" / "multi-model.yaml"


def parent(**annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "svc", "annotations": dict(annotations)},
        "spec": {"predictor": {"sklearn": {"resources": {"limits": {"memory": "100Mi"}}}}},
    }


def tm(name: str, **model: Any) -> dict[str, Any]:
    body = {"framework": "sklearn", "storageUri": f"models/{name}", **model}
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "TrainedModel",
        "metadata": {"name": name},
        "spec": {"inferenceService": "svc", "model": {k: v for k, v in body.items() if v is not None}},
    }


def problems(docs: list[Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_multimodel(docs)
    return info.value.problems


def test_shipped_file_loads_and_the_isvc_loaders_still_read_it():
    svc = load_multimodel(SHIPPED)
    assert [m.name for m in svc.models] == [f"model-{i:02d}" for i in range(24)]
    assert svc.models_per_replica == 4 and svc.models[5].spec.model.memory_bytes == 2**20
    # The single-InferenceService loaders skip the TrainedModel documents.
    assert load_isvc(SHIPPED).metadata.name == "tiny-models"
    assert isvc_from_serve_args({"isvc": str(SHIPPED)}).metadata.name == "tiny-models"
    cfg = yaml.safe_load((ROOT / "configs" / "multi-model.yaml").read_text())
    (app,) = cfg["applications"]
    assert app["import_path"] == "pipelines.app:build_multimodel"
    assert multimodel_from_serve_args(app["args"]).name == "tiny-models"


def test_plan_gives_each_model_its_runtime_and_uri():
    plan = build_multimodel_plan(load_multimodel(SHIPPED))
    assert plan.app_name == "ml-serving-tiny-models" and plan.models_per_replica == 4
    entry = plan.entry("model-11")
    assert entry.node.runtime == "predictors.sklearn:SKLearnPredictor"
    assert entry.node.storage_uri == "artifacts/multimodel/model-11" and entry.source == "spec"
    assert plan.service.predictor.scaling.min_replicas == 2
    assert plan.service.predictor.resources.num_cpus == 0.25


def test_every_bad_field_is_named_with_its_document_index():
    docs = [
        parent(),
        tm("a"),
        tm("b", storageUri=None),
        tm("c", framework="sklaern"),
        tm("d", memory="lots"),
        tm("a"),
    ]
    docs[4]["spec"]["modle"] = {}
    found = problems(docs)
    text = "\n".join(found)
    assert "TrainedModel[1].spec.model.storageUri: Field required" in text
    assert (
        "TrainedModel[2].spec.model.framework: unknown framework 'sklaern'; did you mean 'sklearn'?" in text
    )
    assert "TrainedModel[3].spec.model.memory" in text
    assert "TrainedModel[3].spec.modle: unknown field; did you mean 'model'?" in text
    assert "TrainedModel[4].metadata.name: 'a' is already TrainedModel[0]" in text


def test_framework_or_model_format_and_the_runtime_checks():
    ok = load_multimodel([parent(), tm("a", framework=None, modelFormat={"name": "xgboost"})])
    assert ok.models[0].spec.model.runtime_name == "xgboost"
    text = "\n".join(
        problems(
            [
                parent(),
                tm("a", framework=None),
                tm("b", framework="xgboost", modelFormat={"name": "lightgbm"}),
                tm("c", framework="huggingface"),
                tm("d", framework="tensorflow"),
            ]
        )
    )
    assert (
        "TrainedModel[0].spec.model: set framework (KServe's TrainedModel field) or modelFormat.name" in text
    )
    assert "TrainedModel[1].spec.model: framework 'xgboost' and modelFormat.name 'lightgbm' disagree" in text
    assert "TrainedModel[2].spec.model.framework: unknown framework 'huggingface'" in text
    assert "TrainedModel[3].spec.model.framework: the 'tensorflow' runtime is not supported here" in text


def test_storage_uri_scheme_and_model_names():
    text = "\n".join(problems([parent(), tm("a", storageUri="ftp://x/m"), tm("b c")]))
    assert "TrainedModel[0].spec.model.storageUri: scheme 'ftp://' is not supported" in text
    assert "TrainedModel[1].metadata.name: 'b c' is not a model name" in text


def test_parent_and_annotation_problems():
    bad_parent = parent(**{"isvc.dev/models-per-replica": "0"})
    bad_parent["spec"]["predictor"]["sklearn"]["storageUri"] = "models/own"
    bad_parent["spec"]["transformer"] = {"custom": {"class": "transformers_.churn:ChurnTransformer"}}
    text = "\n".join(problems([bad_parent, tm("a")]))
    assert "metadata.annotations[\"isvc.dev/models-per-replica\"]: expected an integer >= 1, got '0'" in text
    assert "spec.predictor.sklearn.storageUri: an InferenceService hosting TrainedModels has no model" in text
    assert "spec.transformer: not supported with TrainedModels yet" in text
    assert load_multimodel([parent(), tm("a")]).models_per_replica == DEFAULT_MODELS_PER_REPLICA
    # A typo in the annotation is caught by the InferenceService's own lint.
    text = "\n".join(problems([parent(**{"isvc.dev/model-per-replica": "2"})]))
    assert "did you mean 'isvc.dev/models-per-replica'?" in text


def test_wrong_parent_other_kinds_and_parents():
    other = tm("a")
    other["spec"]["inferenceService"] = "nope"
    text = "\n".join(problems([parent(), other, {"kind": "ConfigMap", "metadata": {"name": "x"}}]))
    assert "TrainedModel[0].spec.inferenceService: 'nope' is not the InferenceService here ('svc')" in text
    assert "document 2: kind 'ConfigMap' is neither InferenceService nor TrainedModel" in text
    assert "no InferenceService document" in "\n".join(problems([tm("a")]))
    # Two services in one file: pick one by name; each keeps its own TrainedModels.
    second = parent()
    second["metadata"]["name"] = "svc2"
    mine = tm("b")
    mine["spec"]["inferenceService"] = "svc2"
    assert [m.name for m in load_multimodel([parent(), second, tm("a"), mine], name="svc2").models] == ["b"]
    assert "pick one by name" in "\n".join(problems([parent(), second]))


def test_memory_of_the_largest_models_must_fit_one_replica():
    docs = [parent(**{"isvc.dev/models-per-replica": "2"}), tm("a", memory="60Mi"), tm("b", memory="50Mi")]
    text = "\n".join(problems(docs))
    assert "the 2 largest TrainedModels need" in text and "more than the predictor's '100Mi'" in text
    docs[0]["metadata"]["annotations"]["isvc.dev/models-per-replica"] = "1"
    assert load_multimodel(docs).models_per_replica == 1


def test_serve_args_forms():
    inline = {"isvc": parent(), "trainedModels": [tm("a"), tm("b")]}
    assert [m.name for m in multimodel_from_serve_args(inline).models] == ["a", "b"]
    text = yaml.safe_dump_all([parent(), tm("a")])
    assert multimodel_from_serve_args({"isvc": text}).models[0].name == "a"
    with pytest.raises(SpecError) as info:
        multimodel_from_serve_args({"isvc": parent(), "trainedModel": []})
    assert info.value.problems == ["args.trainedModel: unknown key; did you mean 'trainedModels'?"]
    with pytest.raises(SpecError):
        multimodel_from_serve_args(copy.deepcopy({"isvc": 3}))


def test_run_time_load_parameters():
    src = parse_model_source({"storageUri": "artifacts/multimodel/model-24", "framework": "sklearn"})
    assert src.runtime_name == "sklearn"
    with pytest.raises(SpecError) as info:
        parse_model_source({"storageUri": "x", "framwork": "sklearn"})
    assert info.value.problems[0] == "parameters.framwork: unknown field; did you mean 'framework'?"
    parent_node = PredictorNode(
        "predictors.sklearn:SKLearnPredictor", model_format="sklearn", args={"method": "x"}
    )
    entry = runtime_entry("m", {"storageUri": "a/m", "framework": "sklearn"}, parent_node)
    assert entry.node.args == {"method": "x"} and entry.source == "runtime"
    other = runtime_entry("m", {"storageUri": "a/m", "framework": "xgboost"}, parent_node)
    assert other.node.args == {} and other.node.runtime == "predictors.xgboost:XGBoostPredictor"
