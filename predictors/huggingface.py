"""Hugging Face runtime: a transformers encoder model and its tokenizer, KServe's args.

The model is the ``storageUri`` folder (``config.json``, weights, tokenizer files, as
``save_pretrained`` writes them), or ``--model_id=org/name`` / ``storageUri: hf://org/name``
resolved **from the local Hugging Face cache only** (``$HF_HUB_CACHE``, else
``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``; revision ``--model_revision``, default
``main``); isvc never downloads, and a model missing from the cache is a StorageError
naming the cache folder. ``--model_id`` wins over ``storageUri``, as in KServe.

KServe's huggingfaceserver args that apply: ``--task`` (``sequence_classification``,
``token_classification``, ``fill_mask``, ``text_embedding``; otherwise inferred from the
config's architecture suffix), ``--max_length`` (alias ``--max_model_len``),
``--dtype`` (``auto|float16|float32|bfloat16|float|half``, used on CUDA; CPU runs float32),
``--return_probabilities``, ``--return_raw_logits``, ``--model_revision``,
``--tokenizer_revision``, ``--disable_lower_case``, ``--disable_special_tokens``,
``--return_token_type_ids``, ``--trust_remote_code``, ``--backend=huggingface``.

Inputs are strings: V1 ``{"instances": ["text", ...]}`` or one V2 BYTES tensor. The
tokenizer runs in ``predict``, on the rows of one model call, so padding is per batch.
Outputs per text, as KServe's: sequence classification → class id (or ``{id: p}`` with
``--return_probabilities``); token classification → a label id per token (``-1`` where
the batch was padded); fill mask → the decoded token(s) at the mask; text embedding →
the mean-pooled, L2-normalised vector (float32).

Example::

    p = HuggingFacePredictor("sentiment", model_id="distilbert/sst2", task="sequence_classification")
    p.load(None)                                  # from the local HF cache
    p.predict(np.array(["great film", "dull"], dtype=object))   # array([1, 0])
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import InvalidInput, StorageError
from predictors._files import flag, positive_int
from predictors.base import Predictor, TensorSpec

__all__ = ["HuggingFacePredictor", "hf_cache_dir", "resolve_hf_model"]

log = logging.getLogger(__name__)

TASKS = ("sequence_classification", "token_classification", "fill_mask", "text_embedding")
_KSERVE_ONLY = ("text_generation", "text2text_generation", "time_series_forecast")
_SUFFIXES = {
    "ForSequenceClassification": "sequence_classification",
    "ForTokenClassification": "token_classification",
    "ForMaskedLM": "fill_mask",
}
_DTYPES = {
    "float16": "float16",
    "half": "float16",
    "float32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
}
_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def hf_cache_dir(environ: Any = None) -> Path:
    """The hub cache: ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``, ``HF_HOME/hub``, or the default."""
    env = os.environ if environ is None else environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def resolve_hf_model(model_id: str, revision: str | None = None, cache: Path | None = None) -> Path:
    """The snapshot folder of ``org/name`` (or ``hf://org/name[@revision]``) in the local cache.

    Reads the hub's cache layout (``models--org--name/refs/<revision>`` → ``snapshots/<commit>``)
    and never the network; a model that is not there is a :class:`StorageError` naming the cache.
    """
    repo = model_id.removeprefix("hf://").strip("/")
    for sep in ("@", ":"):  # hf://org/name@rev (KServe's form) or org/name:rev
        if sep in repo and revision is None:
            repo, revision = repo.rsplit(sep, 1)
    if repo.count("/") > 1 or not repo:
        raise StorageError(f"huggingface: {model_id!r} is not a model id like 'org/name'")
    cache = cache or hf_cache_dir()
    folder = cache / ("models--" + repo.replace("/", "--"))
    revision = revision or "main"
    ref = folder / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision if _HEX40.match(revision) else None
    snapshot = folder / "snapshots" / commit if commit else None
    if snapshot is None or not (snapshot / "config.json").is_file():
        where = snapshot if snapshot is not None else ref
        raise StorageError(
            f"huggingface: model {repo!r} (revision {revision}) is not in the local Hugging Face cache "
            f"{cache} (no {where}); isvc never downloads: fetch it first (huggingface-cli download {repo}), "
            "or point HF_HOME / HF_HUB_CACHE at the cache that has it, or give a storageUri folder"
        )
    return snapshot


class HuggingFacePredictor(Predictor):
    """A transformers encoder model with its tokenizer, as KServe's huggingfaceserver runs it."""

    platform = "huggingface"

    def __init__(
        self,
        name: str,
        model_id: str | None = None,
        model_revision: str | None = None,
        tokenizer_revision: str | None = None,
        task: str | None = None,
        max_length: int | str | None = None,
        max_model_len: int | str | None = None,
        dtype: str = "auto",
        return_probabilities: bool | str = False,
        return_raw_logits: bool | str = False,
        disable_lower_case: bool | str = False,
        disable_special_tokens: bool | str = False,
        return_token_type_ids: bool | str = False,
        trust_remote_code: bool | str = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(name)
        if task is not None and task not in TASKS:
            if task in _KSERVE_ONLY:
                raise ValueError(
                    f"task: {task} is a KServe task isvc does not serve yet; served: {', '.join(TASKS)}"
                )
            raise ValueError(f"Unsupported task: {task}. Currently supported tasks are: {', '.join(TASKS)}")
        if dtype != "auto" and dtype not in _DTYPES:
            raise ValueError(f"dtype: expected auto, {', '.join(_DTYPES)}; got {dtype!r}")
        if backend not in ("auto", "huggingface"):
            raise ValueError(f"backend: only 'huggingface' (or 'auto') runs here, got {backend!r}")
        self.model_id = model_id
        self.model_revision = model_revision
        self.tokenizer_revision = tokenizer_revision
        self.task = task
        length = max_length if max_length is not None else max_model_len
        self.max_length = None if length is None else positive_int(length, "max_length")
        self.dtype_name = dtype
        self.return_probabilities = flag(return_probabilities, "return_probabilities")
        self.return_raw_logits = flag(return_raw_logits, "return_raw_logits")
        if self.return_probabilities and self.return_raw_logits:
            raise ValueError("return_probabilities and return_raw_logits are mutually exclusive")
        self.lower_case = not flag(disable_lower_case, "disable_lower_case")
        self.special_tokens = not flag(disable_special_tokens, "disable_special_tokens")
        self.token_type_ids = flag(return_token_type_ids, "return_token_type_ids")
        self.trust_remote_code = flag(trust_remote_code, "trust_remote_code")
        self.model: Any = None
        self.tokenizer: Any = None
        self.device: Any = "cpu"
        self.dtype: Any = None
        self.path: Path | None = None
        self._hidden = -1

    # ----------------------------------------------------------------------------- loading

    def _source(self, model_dir: str | Path | None) -> Path:
        if self.model_id:
            return resolve_hf_model(self.model_id, self.model_revision)
        if model_dir is None:
            raise StorageError("the huggingface runtime needs a storageUri, hf://org/name or args --model_id")
        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise StorageError(f"huggingface: no config.json in {path} (a folder written by save_pretrained)")
        return path

    def _infer_task(self, config: Any) -> str:
        arch = (getattr(config, "architectures", None) or [type(config).__name__])[0]
        inferred = next((t for s, t in _SUFFIXES.items() if arch.endswith(s)), None)
        if self.task is not None:
            if inferred is not None and inferred != self.task:
                log.warning("model %r: --task %s differs from %s's %s", self.name, self.task, arch, inferred)
            return self.task
        if inferred is None:
            raise StorageError(f"Task couldn't be inferred from {arch}. Please manually set `task` option.")
        return inferred

    def load(self, model_dir: str | Path | None) -> None:
        import torch
        import transformers as tf

        path = self.path = self._source(model_dir)
        try:
            config = tf.AutoConfig.from_pretrained(
                path, local_files_only=True, trust_remote_code=self.trust_remote_code
            )
        except (OSError, ValueError) as exc:
            raise StorageError(f"huggingface: cannot read {path / 'config.json'}: {exc}") from exc
        self.task = self._infer_task(config)
        cuda = torch.cuda.is_available()
        self.device = torch.device("cuda" if cuda else "cpu")
        if not cuda:
            if self.dtype_name not in ("auto", "float32", "float"):
                log.info(
                    "model %r: --dtype=%s applies on CUDA; this replica has no GPU: float32",
                    self.name,
                    self.dtype_name,
                )
            self.dtype = torch.float32
        elif self.dtype_name == "auto":
            self.dtype = getattr(config, "torch_dtype", None) or torch.float16
        else:
            self.dtype = getattr(torch, _DTYPES[self.dtype_name])
        auto = {
            "sequence_classification": tf.AutoModelForSequenceClassification,
            "token_classification": tf.AutoModelForTokenClassification,
            "fill_mask": tf.AutoModelForMaskedLM,
            "text_embedding": tf.AutoModel,
        }[self.task]
        try:
            self.tokenizer = tf.AutoTokenizer.from_pretrained(
                path,
                revision=self.tokenizer_revision,
                local_files_only=True,
                do_lower_case=self.lower_case,
                trust_remote_code=self.trust_remote_code,
            )
            model = auto.from_pretrained(
                path, local_files_only=True, trust_remote_code=self.trust_remote_code
            )
        except (OSError, ValueError) as exc:
            raise StorageError(f"huggingface: cannot load the {self.task} model in {path}: {exc}") from exc
        self.model = model.to(self.device, self.dtype).eval()
        if self.task == "fill_mask" and self.tokenizer.mask_token_id is None:
            raise StorageError(
                f"huggingface: the tokenizer in {path} has no mask token (fill_mask needs one)"
            )
        if self.max_length is None:
            lengths = [getattr(config, k) for k in _LENGTH_KEYS if isinstance(getattr(config, k, None), int)]
            tok = getattr(self.tokenizer, "model_max_length", None)
            self.max_length = (
                min(lengths) if lengths else tok if isinstance(tok, int) and tok < 10**6 else 512
            )
        self._hidden = int(getattr(config, "hidden_size", getattr(config, "dim", -1)) or -1)
        log.info("model %r: %s from %s on %s (%s)", self.name, self.task, path, self.device, self.dtype)
        self.ready = True

    # ----------------------------------------------------------------------------- serving

    def _texts(self, batch: Any) -> list[str]:
        import pandas as pd

        if isinstance(batch, pd.DataFrame):
            if batch.shape[1] != 1:
                raise InvalidInput(
                    f"model '{self.name}' takes one text per row, got columns {list(batch.columns)}"
                )
            batch = batch.to_numpy()
        arr = np.asarray(batch, dtype=object)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]  # V1 string instances arrive as (N, 1)
        if arr.ndim != 1:
            raise InvalidInput(f"model '{self.name}' takes one text per row, got shape {list(arr.shape)}")
        texts = []
        for i, v in enumerate(arr.tolist()):
            if isinstance(v, bytes):
                try:
                    v = v.decode("utf-8")
                except UnicodeDecodeError:
                    raise InvalidInput(f"model '{self.name}': text {i} is not UTF-8") from None
            if not isinstance(v, str):
                raise InvalidInput(
                    f"model '{self.name}': instance {i} is {type(v).__name__}, expected a string"
                )
            texts.append(v)
        return texts

    def encode(self, texts: list[str]) -> Any:
        """The tokenizer's tensors for ``texts`` (padded to the longest, truncated to ``max_length``)."""
        return self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            add_special_tokens=self.special_tokens,
            return_token_type_ids=self.token_type_ids,
            return_tensors="pt",
        ).to(self.device)

    def predict(self, batch: Any) -> np.ndarray:
        import torch

        texts = self._texts(batch)
        enc = self.encode(texts)
        with torch.inference_mode():
            out = self.model(**enc)
        if self.task == "text_embedding":
            return self._embed(out.last_hidden_state, enc["attention_mask"])
        logits = out.logits.float()
        if self.task == "sequence_classification":
            return self._classes(logits)
        if self.task == "token_classification":
            return self._tokens(logits, enc["attention_mask"])
        return self._masks(texts, logits, enc["input_ids"])

    def _scores(self, logits: Any) -> Any:
        import torch

        return torch.softmax(logits, dim=-1) if self.return_probabilities else logits

    def _as_dicts(self, rows: Any, digits: int | None) -> list[dict[int, float]]:
        return [{i: round(float(v), digits) if digits else float(v) for i, v in enumerate(r)} for r in rows]

    def _classes(self, logits: Any) -> np.ndarray:
        if not (self.return_probabilities or self.return_raw_logits):
            return logits.argmax(dim=-1).cpu().numpy().astype(np.int64)
        rows = self._scores(logits).cpu().numpy()
        return _objects(self._as_dicts(rows, 4 if self.return_probabilities else None))

    def _tokens(self, logits: Any, mask: Any) -> np.ndarray:
        mask = mask.cpu().numpy().astype(bool)
        if not (self.return_probabilities or self.return_raw_logits):
            labels = logits.argmax(dim=-1).cpu().numpy().astype(np.int64)
            labels[~mask] = -1
            return labels
        scores = self._scores(logits).cpu().numpy()
        digits = 4 if self.return_probabilities else None
        return _objects([self._as_dicts(s[m], digits) for s, m in zip(scores, mask, strict=True)])

    def _masks(self, texts: list[str], logits: Any, input_ids: Any) -> np.ndarray:
        if self.return_probabilities or self.return_raw_logits:
            raise InvalidInput(
                f"model '{self.name}': fill_mask serves decoded tokens only (no probabilities)"
            )
        words = []
        where = input_ids == self.tokenizer.mask_token_id
        for i in range(len(texts)):
            positions = where[i].nonzero(as_tuple=True)[0]
            if len(positions) == 0:
                raise InvalidInput(f"model '{self.name}': text {i} has no {self.tokenizer.mask_token} token")
            words.append(self.tokenizer.decode(logits[i, positions].argmax(dim=-1)))
        return _objects(words)

    def _embed(self, hidden: Any, mask: Any) -> np.ndarray:
        import torch

        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled.float(), p=2, dim=1).cpu().numpy()

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("input-0", "BYTES", [-1])]

    def outputs(self) -> list[TensorSpec]:
        if self.task == "text_embedding":
            return [TensorSpec("output-0", "FP32", [-1, self._hidden])]
        if self.task == "fill_mask" or self.return_probabilities or self.return_raw_logits:
            return [TensorSpec("output-0", "BYTES", [-1])]
        if self.task == "token_classification":
            return [TensorSpec("output-0", "INT64", [-1, -1])]
        return [TensorSpec("output-0", "INT64", [-1])]


def _objects(values: list[Any]) -> np.ndarray:
    """A 1-D object array of ``values`` (dicts, lists or strings), one per text."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out
