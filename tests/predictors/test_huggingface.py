"""The huggingface runtime on tiny random-weight BERTs and word-level tokenizers built offline in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from pipelines.errors import InvalidInput, StorageError
from predictors.huggingface import HuggingFacePredictor, hf_cache_dir, resolve_hf_model
from tests.predictors.serving import as_array, client_for, plan_for, v1_predict, v2_infer

SENTENCES = [
    "the film was great and the cast was great",
    "a dull film with a dull plot",
    "i loved the music but not the ending",
    "the ending was sad and the plot was thin",
]
TEXTS = ["the film was great", "a dull plot with a sad ending and thin music"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def save_tokenizer(folder: Path) -> tf.PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(folder)
    return fast


def build(folder: Path, model_cls: type, **config: object) -> Path:
    """A tiny BERT of ``model_cls`` with random weights and its tokenizer, saved into ``folder``."""
    tokenizer = save_tokenizer(folder)
    torch.manual_seed(0)
    cfg = tf.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        **config,
    )
    model_cls(cfg).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {
        "seq": build(root / "seq", tf.BertForSequenceClassification, num_labels=3),
        "tok": build(root / "tok", tf.BertForTokenClassification, num_labels=4),
        "mlm": build(root / "mlm", tf.BertForMaskedLM),
        "base": build(root / "base", tf.BertModel),
    }


def own(folder: Path, model_cls: type, texts: list[str]) -> tuple[object, dict[str, torch.Tensor]]:
    """What transformers itself computes for ``texts``."""
    tokenizer = tf.AutoTokenizer.from_pretrained(folder)
    enc = tokenizer(texts, padding=True, truncation=True, return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        return model_cls.from_pretrained(folder).eval()(**enc), enc


def loaded(folder: Path | None, **args: object) -> HuggingFacePredictor:
    p = HuggingFacePredictor("m", **args)  # type: ignore[arg-type]
    p.load(folder)
    return p


def test_sequence_classification_matches_transformers(models_dir) -> None:
    out, _ = own(models_dir["seq"], tf.BertForSequenceClassification, TEXTS)
    p = loaded(models_dir["seq"])
    assert (p.task, str(p.device), p.dtype, p.max_length) == (
        "sequence_classification",
        "cpu",
        torch.float32,
        32,
    )
    batch = np.array(TEXTS, dtype=object).reshape(-1, 1)  # V1 string instances arrive as (N, 1)
    assert p.predict(batch).tolist() == out.logits.argmax(-1).tolist()
    assert (
        p.predict(np.array([t.encode() for t in TEXTS], dtype=object)).tolist()
        == out.logits.argmax(-1).tolist()
    )
    probs = loaded(models_dir["seq"], return_probabilities=True, dtype="float16").predict(np.array(TEXTS))
    expected = torch.softmax(out.logits, -1).numpy()
    assert [list(d) for d in probs] == [[0, 1, 2]] * 2
    np.testing.assert_allclose([list(d.values()) for d in probs], expected, atol=6e-5)
    raw = loaded(models_dir["seq"], return_raw_logits="true").predict(np.array(TEXTS))
    np.testing.assert_allclose([list(d.values()) for d in raw], out.logits.numpy(), rtol=1e-5)


def test_token_classification_labels_each_token(models_dir) -> None:
    out, enc = own(models_dir["tok"], tf.BertForTokenClassification, TEXTS)
    p = loaded(models_dir["tok"])
    assert p.task == "token_classification"
    got = p.predict(np.array(TEXTS, dtype=object))
    expected = out.logits.argmax(-1).numpy()
    expected[enc["attention_mask"].numpy() == 0] = -1
    assert got.tolist() == expected.tolist() and (got[0] == -1).any()
    probs = loaded(models_dir["tok"], return_probabilities=True).predict(np.array(TEXTS[:1]))
    assert len(probs[0]) == int(enc["attention_mask"][0].sum()) and set(probs[0][0]) == {0, 1, 2, 3}


def test_fill_mask_decodes_the_masked_token(models_dir) -> None:
    texts = ["the [MASK] was great", "a dull [MASK] with a [MASK] plot"]
    out, enc = own(models_dir["mlm"], tf.BertForMaskedLM, texts)
    tokenizer = tf.AutoTokenizer.from_pretrained(models_dir["mlm"])
    expected = []
    for i in range(2):
        positions = (enc["input_ids"][i] == tokenizer.mask_token_id).nonzero(as_tuple=True)[0]
        expected.append(tokenizer.decode(out.logits[i, positions].argmax(-1)))
    p = loaded(models_dir["mlm"])
    assert p.task == "fill_mask" and p.predict(np.array(texts, dtype=object)).tolist() == expected
    with pytest.raises(InvalidInput, match=r"text 0 has no \[MASK\] token"):
        p.predict(np.array(["no mask here"], dtype=object))


def test_text_embedding_needs_the_task_and_is_mean_pooled(models_dir) -> None:
    with pytest.raises(StorageError, match="Task couldn't be inferred from BertModel. Please manually set"):
        loaded(models_dir["base"])
    out, enc = own(models_dir["base"], tf.BertModel, TEXTS)
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1)
    expected = torch.nn.functional.normalize(pooled, dim=1).numpy()
    p = loaded(models_dir["base"], task="text_embedding")
    got = p.predict(np.array(TEXTS, dtype=object))
    assert got.dtype == np.float32 and got.shape == (2, 16)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert p.outputs() == [{"name": "output-0", "datatype": "FP32", "shape": [-1, 16]}]


def test_args_and_inputs_are_checked(models_dir, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unsupported task: qa"):
        HuggingFacePredictor("m", task="qa")
    with pytest.raises(ValueError, match="text_generation is a KServe task isvc does not serve yet"):
        HuggingFacePredictor("m", task="text_generation")
    with pytest.raises(ValueError, match="mutually exclusive"):
        HuggingFacePredictor("m", return_probabilities=True, return_raw_logits=True)
    with pytest.raises(ValueError, match="backend"):
        HuggingFacePredictor("m", backend="vllm")
    with pytest.raises(StorageError, match="no config.json in"):
        HuggingFacePredictor("m").load(tmp_path)
    p = loaded(models_dir["seq"], max_length="4")
    assert p.max_length == 4 and p.encode(TEXTS)["input_ids"].shape[1] == 4
    with pytest.raises(InvalidInput, match="instance 1 is int, expected a string"):
        p.predict(np.array(["ok", 3], dtype=object))
    with pytest.raises(InvalidInput, match=r"one text per row, got shape \[1, 2\]"):
        p.predict(np.array([["a", "b"]], dtype=object))


def fake_cache(root: Path, repo: str, folder: Path, revision: str = "a" * 40) -> Path:
    """The hub cache layout ``huggingface_hub`` writes: refs/main → snapshots/<commit>/files."""
    repo_dir = root / "hub" / ("models--" + repo.replace("/", "--"))
    shutil.copytree(folder, repo_dir / "snapshots" / revision)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)
    return repo_dir / "snapshots" / revision


def test_model_id_resolves_from_the_local_cache_only(models_dir, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hf_cache_dir() == tmp_path / "hf" / "hub"
    snapshot = fake_cache(tmp_path / "hf", "acme/tiny-sentiment", models_dir["seq"])
    assert resolve_hf_model("hf://acme/tiny-sentiment") == snapshot
    assert resolve_hf_model("acme/tiny-sentiment", revision="a" * 40) == snapshot
    assert resolve_hf_model("hf://acme/tiny-sentiment@" + "a" * 40) == snapshot  # KServe's @revision
    with pytest.raises(StorageError, match="revision v9"):
        resolve_hf_model("hf://acme/tiny-sentiment@v9")
    p = loaded(None, model_id="acme/tiny-sentiment")
    assert p.path == snapshot and p.task == "sequence_classification"
    with pytest.raises(
        StorageError, match=rf"'acme/absent' .* not in the local Hugging Face cache {tmp_path}/hf/hub"
    ):
        loaded(None, model_id="acme/absent")
    with pytest.raises(StorageError, match="revision v2"):
        resolve_hf_model("acme/tiny-sentiment", revision="v2")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(StorageError, match=f"cache {tmp_path}/elsewhere"):
        loaded(None, model_id="acme/tiny-sentiment")


async def test_served_through_v1_and_v2(models_dir) -> None:
    out, _ = own(models_dir["seq"], tf.BertForSequenceClassification, TEXTS)
    expected = out.logits.argmax(-1).tolist()
    spec = {"huggingface": {"storageUri": str(models_dir["seq"]), "protocolVersion": "v2"}}
    async with await client_for(spec) as client:
        assert await v1_predict(client, TEXTS) == expected
        v2_input = {"name": "input-0", "shape": [2], "datatype": "BYTES", "data": TEXTS}
        (got,) = await v2_infer(client, [v2_input])
        assert (got["datatype"], got["shape"]) == ("INT64", [2])
        assert as_array(got).tolist() == expected
        meta = (await client.get("/v2/models/m")).json()
        assert meta["platform"] == "huggingface"
        assert meta["inputs"] == [{"name": "input-0", "datatype": "BYTES", "shape": [-1]}]
        bad = await client.post("/v1/models/m:predict", json={"instances": [1, 2]})
        assert bad.status_code == 400 and "expected a string" in bad.json()["error"]


async def test_probabilities_and_hf_uri_through_the_spec(models_dir, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    fake_cache(tmp_path / "hf", "acme/tiny-sentiment", models_dir["seq"])
    spec = {
        "model": {
            "modelFormat": {"name": "huggingface"},
            "storageUri": "hf://acme/tiny-sentiment",
            "args": ["--model_name=sentiment", "--return_probabilities", "--max_length=16"],
        }
    }
    node = plan_for(spec).predictor
    assert (node.storage_uri, node.args["model_id"]) == (None, "hf://acme/tiny-sentiment")
    out, _ = own(models_dir["seq"], tf.BertForSequenceClassification, TEXTS)
    expected = torch.softmax(out.logits, -1).numpy()
    async with await client_for(spec, name="sentiment") as client:
        got = await v1_predict(client, TEXTS, name="sentiment")
        assert [list(d) for d in got] == [["0", "1", "2"]] * 2  # JSON keys, as KServe's V1 writes them
        np.testing.assert_allclose([list(d.values()) for d in got], expected, atol=6e-5)
