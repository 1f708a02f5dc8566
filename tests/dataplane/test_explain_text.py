"""AnchorText over the sentiment model (configs/isvc/sentiment.yaml, the tiny offline BERT):
which words hold the prediction, through ``:explain`` and ``sentiment-service-explainer``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from pipelines.errors import StorageError
from pipelines.plan import build_plan
from pipelines.spec import parse_isvc
from tests.helpers import ROOT, make_client


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("build_sentiment", ROOT / "scripts" / "build_sentiment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(tmp_path_factory.mktemp("sentiment"))


def plan_with_anchor_text(model_dir: Path, config: dict | None = None):
    doc = yaml.safe_load((ROOT / "configs" / "isvc" / "sentiment.yaml").read_text())
    doc["spec"]["predictor"]["huggingface"]["storageUri"] = str(model_dir)
    doc["spec"]["explainer"] = {
        "alibi": {"type": "AnchorText", "config": config or {"seed": 1, "threshold": 0.9}}
    }
    return build_plan(parse_isvc(doc))


async def test_the_anchor_names_the_words_that_hold_the_prediction(model_dir: Path) -> None:
    async with await make_client(plan_with_anchor_text(model_dir)) as client:
        url = "/v1/models/sentiment-service:explain"
        r = await client.post(url, json={"instances": ["the food was great", "the service was terrible"]})
        assert r.status_code == 200, r.text
        good, bad = r.json()["explanations"]
        assert good["meta"]["name"] == "AnchorText" and bad["meta"]["name"] == "AnchorText"
        assert good["data"]["raw"]["prediction"] == [1] and bad["data"]["raw"]["prediction"] == [0]
        # The tiny model calls almost anything positive (so the empty anchor holds); the negative
        # call rests on one word.
        assert set(good["data"]["anchor"]) <= {"the", "food", "was", "great"}
        assert bad["data"]["anchor"] == ["terrible"] and bad["data"]["precision"] >= 0.9
        r = await client.post(url, json={"instances": [3]})
        assert r.status_code == 400 and "instances[0] must be a string" in r.json()["error"]
        body = {
            "inputs": [{"name": "input-0", "datatype": "BYTES", "shape": [1], "data": ["the food was great"]}]
        }
        v2 = await client.post("/v2/models/sentiment-service-explainer/infer", json=body)
        assert v2.status_code == 200, v2.text
        assert json.loads(v2.json()["outputs"][0]["data"][0])["data"]["anchor"] == good["data"]["anchor"]


async def test_a_spacy_pipeline_that_is_not_installed_is_a_clear_error(model_dir: Path) -> None:
    with pytest.raises(StorageError, match="spaCy pipeline 'en_core_web_md' is not installed here"):
        await make_client(plan_with_anchor_text(model_dir, {"spacy_model": "en_core_web_md"}))
    with pytest.raises(StorageError, match="similarity needs a spaCy pipeline with word vectors"):
        await make_client(plan_with_anchor_text(model_dir, {"sampling_strategy": "similarity"}))
