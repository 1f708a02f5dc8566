"""configs/sentiment.yaml as shipped: the tiny offline model scripts/build_sentiment.py trains,
served through V1 and V2 from configs/isvc/sentiment.yaml (only its storageUri pointed at tmp_path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.cli import main
from pipelines.plan import build_plan
from pipelines.spec import isvc_from_serve_args, parse_isvc
from tests.helpers import ROOT, make_client

ISVC = ROOT / "configs" / "isvc" / "sentiment.yaml"
NAME = "sentiment-service"
POSITIVE = ["the food was great", "i loved this movie , the music was wonderful", "we had a lovely stay"]
NEGATIVE = ["the service was terrible", "a boring and awful film", "the hotel was dirty and noisy"]


def build_sentiment(out: Path) -> Path:
    spec = importlib.util.spec_from_file_location("build_sentiment", ROOT / "scripts" / "build_sentiment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(out)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sentiment(tmp_path_factory.mktemp("sentiment"))


def shipped_isvc(storage_uri: Path) -> dict[str, Any]:
    doc = yaml.safe_load(ISVC.read_text())
    runtime = doc["spec"]["predictor"]["huggingface"]
    assert runtime["storageUri"] == "artifacts/sentiment/predictor"  # where `make artifacts` writes it
    runtime["storageUri"] = str(storage_uri)
    return doc


def test_the_script_saves_a_pretrained_folder(model_dir: Path) -> None:
    import transformers as tf

    assert sorted(p.name for p in model_dir.iterdir()) == [
        "config.json",
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    config = tf.AutoConfig.from_pretrained(model_dir, local_files_only=True)
    assert config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    assert config.architectures == ["BertForSequenceClassification"]


def test_shipped_configs_plan_one_gpu_predictor() -> None:
    serve = yaml.safe_load((ROOT / "configs" / "sentiment.yaml").read_text())
    (app,) = serve["applications"]
    assert app["import_path"] == "pipelines.app:build"
    assert app["args"] == {"isvc": "configs/isvc/sentiment.yaml"}
    plan = build_plan(isvc_from_serve_args({"isvc": str(ISVC)}))
    assert plan.app_name == app["name"] == "ml-serving-sentiment-service"
    assert plan.deployment_mode == "RawDeployment" and plan.predictor.protocol == "v2"
    assert plan.predictor.resources.num_gpus == 1 and plan.ingress.resources.num_gpus is None
    assert plan.predictor.args["task"] == "sequence_classification"


def test_isvc_validate_passes(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for path in ("configs/isvc/sentiment.yaml", "configs/sentiment.yaml"):
        assert main(["validate", path]) == 0
        assert f"ml-serving/{NAME}: valid" in capsys.readouterr().out


async def test_v1_and_v2_classify_text(model_dir: Path) -> None:
    texts = POSITIVE + NEGATIVE
    labels = [1] * len(POSITIVE) + [0] * len(NEGATIVE)  # id2label: 0 NEGATIVE, 1 POSITIVE
    async with await make_client(build_plan(parse_isvc(shipped_isvc(model_dir)))) as client:
        r = await client.post(f"/v1/models/{NAME}:predict", json={"instances": texts})
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": labels}
        body = {
            "id": "r1",
            "inputs": [{"name": "input-0", "shape": [len(texts)], "datatype": "BYTES", "data": texts}],
        }
        r = await client.post(f"/v2/models/{NAME}/infer", json=body)
        assert r.status_code == 200, r.text
        (out,) = r.json()["outputs"]
        assert (out["datatype"], out["shape"], out["data"]) == ("INT64", [len(texts)], labels)
        # KServe's own sample: one BYTES item, shape [1] or [] (0-d)
        for shape in ([1], []):
            one = {"name": "input-0", "shape": shape, "datatype": "BYTES", "data": [NEGATIVE[0]]}
            r = await client.post(f"/v2/models/{NAME}/infer", json={"inputs": [one]})
            assert r.status_code == 200, r.text
            assert r.json()["outputs"][0]["data"] == [0]
        meta = (await client.get(f"/v2/models/{NAME}")).json()
        assert meta["platform"] == "huggingface"
        assert meta["inputs"] == [{"name": "input-0", "datatype": "BYTES", "shape": [-1]}]


async def test_return_probabilities_as_the_comment_says(model_dir: Path) -> None:
    doc = shipped_isvc(model_dir)
    doc["spec"]["predictor"]["huggingface"]["args"].append("--return_probabilities")
    async with await make_client(build_plan(parse_isvc(doc))) as client:
        r = await client.post(f"/v1/models/{NAME}:predict", json={"instances": [POSITIVE[0], NEGATIVE[0]]})
        assert r.status_code == 200, r.text
        pos, neg = r.json()["predictions"]
        assert set(pos) == {"0", "1"} and pos["1"] > 0.9 and neg["0"] > 0.9
