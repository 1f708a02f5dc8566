"""KServe's ``TrainedModel`` (``serving.kserve.io/v1alpha1``): many models on one InferenceService.

The same YAML file holds the InferenceService (the *parent*, a multi-model predictor: a runtime
without a ``storageUri`` of its own) and one ``kind: TrainedModel`` document per model::

    apiVersion: serving.kserve.io/v1alpha1
    kind: TrainedModel
    metadata:
      name: model-07                         # the model's name in /v1/models/{name}:predict
    spec:
      inferenceService: tiny-models          # the parent's metadata.name
      model:
        framework: sklearn                   # or modelFormat: {name: sklearn}
        storageUri: artifacts/multimodel/model-07
        memory: 1Mi                          # optional here (KServe requires it)

The parent's annotation ``isvc.dev/models-per-replica`` (default 3, Ray's own default) caps the
models one predictor replica holds; the least recently used one is evicted to make room.
:func:`load_multimodel` reads such a file and reports every problem with its field path
(``TrainedModel[3].spec.model.storageUri: Field required``); :func:`~pipelines.spec.load_isvc`
keeps reading the InferenceService alone from the same file.

>>> svc = load_multimodel("configs/isvc/multi-model.yaml")
>>> svc.name, len(svc.models), svc.models_per_replica, svc.models[7].name
('tiny-models', 24, 4, 'model-07')
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from pipelines.errors import SpecError
from pipelines.spec._lint import _lint, _Model, _suggest, _translate
from pipelines.spec.load import _read_docs, parse_isvc, resolve_isvc_path
from pipelines.spec.models import (
    ANN_MODELS_PER_REPLICA,
    KIND,
    RUNTIMES,
    UNSUPPORTED_RUNTIMES,
    InferenceService,
    ModelFormat,
)
from pipelines.spec.quantity import check_quantity, parse_memory

__all__ = [
    "DEFAULT_MODELS_PER_REPLICA",
    "TM_API_VERSION",
    "TM_KIND",
    "MultiModelService",
    "TrainedModel",
    "TrainedModelSpec",
    "load_multimodel",
    "multimodel_from_serve_args",
    "parse_model_source",
    "parse_trained_model",
]

logger = logging.getLogger("pipelines.spec")

TM_API_VERSION: Literal["serving.kserve.io/v1alpha1"] = "serving.kserve.io/v1alpha1"
TM_KIND: Literal["TrainedModel"] = "TrainedModel"
DEFAULT_MODELS_PER_REPLICA = 3
"""``isvc.dev/models-per-replica`` when unset: Ray's ``@serve.multiplexed`` default."""

MMS_RUNTIMES = tuple(r for r in RUNTIMES if r != "huggingface")
"""Frameworks a TrainedModel may name; KServe's multi-model predictors exclude huggingface too."""

_TM_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")  # KServe's TrainedModel webhook
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
SERVE_ARGS_KEYS = ("isvc", "name", "trainedModels")
"""The keys of a multi-model Serve application's ``args``."""


def _framework(value: str) -> str:
    name = value.lower()
    if name in UNSUPPORTED_RUNTIMES:
        raise ValueError(f"the '{name}' runtime is not supported here; supported: {', '.join(MMS_RUNTIMES)}")
    if name not in MMS_RUNTIMES:
        raise ValueError(
            f"unknown framework {value!r}{_suggest(name, MMS_RUNTIMES)}; a TrainedModel takes one of "
            + ", ".join(MMS_RUNTIMES)
        )
    return name


class TrainedModelSource(_Model):
    """``spec.model``: where the model is and which runtime reads it (also the body of a run-time load)."""

    framework: str | None = Field(None, description="Runtime: sklearn, xgboost, lightgbm, pytorch, onnx.")
    model_format: ModelFormat | None = Field(None, description="{name} — the same as framework.")
    storage_uri: str = Field(description="Path, file://, pvc://, s3://, https:// (as the predictor's).")
    memory: str | None = Field(None, description="What the model needs in memory, e.g. '64Mi'.")

    @field_validator("framework")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        return None if value is None else _framework(value)

    @field_validator("memory")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        return check_quantity(value)

    @field_validator("storage_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        from pipelines.storage import SUPPORTED_SCHEMES

        if not value.strip():
            raise ValueError("must not be empty")
        match = _SCHEME.match(value)
        if match and match.group(1).lower() not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"scheme '{match.group(1)}://' is not supported; use a path or one of "
                + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
            )
        return value

    @model_validator(mode="after")
    def _one_runtime(self) -> TrainedModelSource:
        fmt = self.model_format.name if self.model_format is not None else None
        if fmt is not None and fmt not in MMS_RUNTIMES:
            raise ValueError(f"modelFormat.name: {fmt!r} cannot be a TrainedModel's runtime")
        if self.framework is None and fmt is None:
            raise ValueError("set framework (KServe's TrainedModel field) or modelFormat.name")
        if self.framework is not None and fmt is not None and self.framework != fmt:
            raise ValueError(f"framework {self.framework!r} and modelFormat.name {fmt!r} disagree")
        return self

    @property
    def runtime_name(self) -> str:
        """The runtime's format name (``sklearn``, ...)."""
        name = self.framework or (self.model_format.name if self.model_format else None)
        assert name is not None
        return name

    @property
    def memory_bytes(self) -> int | None:
        return parse_memory(self.memory) if self.memory is not None else None


class TrainedModelSpec(_Model):
    """``spec``: the parent InferenceService and the model."""

    inference_service: str = Field(description="metadata.name of the InferenceService that hosts it.")
    model: TrainedModelSource = Field(description="{framework, storageUri, memory}.")


class TrainedModelMetadata(_Model):
    """``metadata``: the name is the model's name in URLs."""

    name: str = Field(description="Model name: letters, digits, '_' and '-' (KServe's rule).")
    namespace: str | None = Field(None, description="Must be the InferenceService's when set.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Free-form.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form.")
    k8s_ignored = frozenset(
        """uid resourceVersion generation creationTimestamp managedFields finalizers ownerReferences selfLink
        deletionTimestamp deletionGracePeriodSeconds generateName""".split()
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _TM_NAME.match(value) or len(value) > 253:
            raise ValueError(f"{value!r} is not a model name (letters, digits, '_' and '-')")
        return value


class TrainedModel(_Model):
    """One parsed ``kind: TrainedModel`` document."""

    api_version: Literal["serving.kserve.io/v1alpha1"] = Field(TM_API_VERSION, description="API version.")
    kind: Literal["TrainedModel"] = Field(TM_KIND, description="Always TrainedModel.")
    metadata: TrainedModelMetadata = Field(description="Name.")
    spec: TrainedModelSpec = Field(description="Parent and model.")
    k8s_ignored = frozenset({"status"})
    _ignored: list[str] = PrivateAttr(default_factory=list)

    @property
    def name(self) -> str:
        return self.metadata.name


def _validate(doc: Any, model: type[_Model], where: str) -> tuple[Any, list[str], list[str]]:
    """(parsed or None, problems, ignored): :func:`_lint` then pydantic, every path under ``where``."""
    if not isinstance(doc, dict):
        return None, [f"{where}: expected a mapping, got {type(doc).__name__}"], []
    problems: list[str] = []
    ignored: list[str] = []
    cleaned = _lint(doc, model, where, problems, ignored)
    parsed = None
    try:
        parsed = model.model_validate(cleaned)
    except ValidationError as exc:
        unprefixed = [p.removeprefix(f"{where}.") for p in problems]
        problems += [_under(where, line) for line in _translate(exc, unprefixed)]
    return (None if problems else parsed), problems, ignored


def _under(where: str, line: str) -> str:
    path, sep, msg = line.partition(": ")
    if not sep:
        return f"{where}: {line}"
    if path == "document":
        return f"{where}: {msg}"
    return f"{where}{'' if path.startswith('[') else '.'}{path}: {msg}"


def parse_trained_model(doc: Any, where: str = "TrainedModel[0]") -> TrainedModel:
    """Validate one TrainedModel mapping; problems name their path under ``where``.

    >>> tm = parse_trained_model({"metadata": {"name": "m1"}, "spec": {"inferenceService": "s",
    ...     "model": {"framework": "sklearn", "storageUri": "artifacts/m1"}}})
    >>> tm.name, tm.spec.model.runtime_name
    ('m1', 'sklearn')
    """
    tm, problems, ignored = _validate(doc, TrainedModel, where)
    if problems:
        raise SpecError(problems)
    tm._ignored = ignored
    return tm  # type: ignore[no-any-return]


def parse_model_source(body: Any, where: str = "parameters") -> TrainedModelSource:
    """A run-time load's ``{"storageUri", "framework" | "modelFormat", "memory"}``, as ``spec.model``.

    >>> parse_model_source({"storageUri": "artifacts/m9", "framework": "sklearn"}).runtime_name
    'sklearn'
    """
    src, problems, _ = _validate(body, TrainedModelSource, where)
    if problems:
        raise SpecError(problems)
    return src  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MultiModelService:
    """The parent InferenceService, its TrainedModels (file order) and the per-replica cap."""

    isvc: InferenceService
    models: tuple[TrainedModel, ...]
    models_per_replica: int = DEFAULT_MODELS_PER_REPLICA

    @property
    def name(self) -> str:
        return self.isvc.metadata.name


def _ann_path(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def _cap(isvc: InferenceService, problems: list[str]) -> int:
    raw = isvc.metadata.annotations.get(ANN_MODELS_PER_REPLICA)
    if raw is None:
        return DEFAULT_MODELS_PER_REPLICA
    try:
        cap = int(str(raw).strip())
    except ValueError:
        cap = 0
    if cap < 1:
        problems.append(f"{_ann_path(ANN_MODELS_PER_REPLICA)}: expected an integer >= 1, got {raw!r}")
        return DEFAULT_MODELS_PER_REPLICA
    return cap


def _check_parent(isvc: InferenceService, problems: list[str]) -> None:
    """KServe's ``IsMMSPredictor``: no model of its own; isvc also serves no transformer/explainer here."""
    pred = isvc.spec.predictor
    name = pred.runtime_name
    if name == "huggingface":
        problems.append("spec.predictor.huggingface: cannot host TrainedModels (KServe's rule too)")
    elif pred.runtime.storage_uri:
        problems.append(
            f"spec.predictor.{name}.storageUri: an InferenceService hosting TrainedModels has no model of "
            "its own (KServe's multi-model predictor); remove it and add a TrainedModel document instead"
        )
    if pred.new_model is not None:
        problems.append("spec.predictor.newModel: not supported with TrainedModels")
    for part in ("transformer", "explainer"):
        if getattr(isvc.spec, part) is not None:
            problems.append(f"spec.{part}: not supported with TrainedModels yet (only predictors host them)")


def _check_memory(isvc: InferenceService, models: list[TrainedModel], cap: int, problems: list[str]) -> None:
    """KServe's ``MemoryResourceAvailable``, per replica: the ``cap`` largest models must fit."""
    pred = isvc.spec.predictor
    limit = None
    for block in (pred.runtime.resources, pred.resources):
        for kind in ("limits", "requests"):
            listing = getattr(block, kind) if block is not None else None
            if limit is None and listing is not None and listing.memory is not None:
                limit = listing.memory
    sizes = sorted((m.spec.model.memory_bytes or 0 for m in models), reverse=True)[:cap]
    if limit is None or not any(sizes):
        return
    if sum(sizes) > parse_memory(limit):
        problems.append(
            f"{_ann_path(ANN_MODELS_PER_REPLICA)}: the {len(sizes)} largest TrainedModels need "
            f"{sum(sizes)} bytes of memory together, more than the predictor's {limit!r}; lower the "
            "annotation or raise spec.predictor resources.memory"
        )


def load_multimodel(
    source: str | Path | list[Any] | dict[str, Any], *, name: str | None = None
) -> MultiModelService:
    """The InferenceService and its TrainedModels from a path, YAML text or list of documents.

    ``name`` picks the InferenceService when the file holds several; TrainedModels naming another
    InferenceService of the same file belong to it and are skipped. Every problem of every
    document is reported at once, ``TrainedModel[i]`` counting TrainedModel documents in file order.
    """
    docs = list(source) if isinstance(source, list) else _read_docs(source)
    kinds = [d.get("kind") if isinstance(d, dict) else None for d in docs]
    problems: list[str] = []
    services = [d for d, k in zip(docs, kinds, strict=True) if k == KIND]
    names = [str((d.get("metadata") or {}).get("name")) for d in services]
    for i, (d, k) in enumerate(zip(docs, kinds, strict=True)):
        if k not in (KIND, TM_KIND):
            what = f"kind {k!r}" if isinstance(d, dict) else f"a {type(d).__name__}"
            problems.append(f"document {i}: {what} is neither InferenceService nor TrainedModel")
    if name is not None:
        services = [d for d, n in zip(services, names, strict=True) if n == name]
    if len(services) != 1:
        found = ", ".join(names) or "none"
        if not services:
            problems.append(
                f"no InferenceService named {name!r} (found: {found})"
                if name is not None
                else "no InferenceService document (the TrainedModels' parent)"
            )
        else:
            problems.append(f"{len(services)} InferenceService documents ({found}); pick one by name")
        raise SpecError(problems)
    try:
        isvc = parse_isvc(services[0])
    except SpecError as exc:
        problems += exc.problems
        raise SpecError(problems) from None
    parent = isvc.metadata.name
    cap = _cap(isvc, problems)
    _check_parent(isvc, problems)
    models: list[TrainedModel] = []
    first: dict[str, int] = {}
    tm_docs = [d for d, k in zip(docs, kinds, strict=True) if k == TM_KIND]
    for i, doc in enumerate(tm_docs):
        where = f"TrainedModel[{i}]"
        tm, errs, ignored = _validate(doc, TrainedModel, where)
        problems += errs
        if tm is None:
            continue
        tm._ignored = ignored
        owner = tm.spec.inference_service
        if owner != parent:
            if owner in names:
                continue  # another InferenceService of this file hosts it
            problems.append(
                f"{where}.spec.inferenceService: {owner!r} is not the InferenceService here ({parent!r})"
            )
            continue
        if tm.metadata.namespace not in (None, isvc.metadata.namespace):
            problems.append(
                f"{where}.metadata.namespace: {tm.metadata.namespace!r} differs from the "
                f"InferenceService's {isvc.metadata.namespace!r}"
            )
        if tm.name in first:
            problems.append(f"{where}.metadata.name: {tm.name!r} is already TrainedModel[{first[tm.name]}]")
            continue
        first[tm.name] = i
        models.append(tm)
    _check_memory(isvc, models, cap, problems)
    if problems:
        raise SpecError(problems)
    return MultiModelService(isvc=isvc, models=tuple(models), models_per_replica=cap)


def multimodel_from_serve_args(args: Any, base_dir: str | Path | None = None) -> MultiModelService:
    """The service in a multi-model Serve application's ``args``.

    ``{isvc: <path | YAML text | InferenceService mapping>, name?: str, trainedModels?: [documents]}``:
    a path or YAML text holds the InferenceService and its TrainedModel documents; an inline
    mapping is the InferenceService alone, its TrainedModels listed under ``trainedModels``. A
    relative path follows :func:`~pipelines.spec.resolve_isvc_path`::

        >>> multimodel_from_serve_args({"isvc": "configs/isvc/multi-model.yaml"}).models_per_replica
        4
    """
    if not isinstance(args, dict):
        raise SpecError([f"args: expected a mapping ({{isvc: ...}}), got {type(args).__name__}"])
    problems = [
        f"args.{k}: unknown key{_suggest(str(k), SERVE_ARGS_KEYS)}" for k in args if k not in SERVE_ARGS_KEYS
    ]
    if "isvc" not in args:
        problems.append(
            "args.isvc: required (a path to the YAML with the InferenceService and TrainedModels)"
        )
    extra = args.get("trainedModels", [])
    if not isinstance(extra, list):
        problems.append(
            f"args.trainedModels: expected a list of TrainedModel documents, got {type(extra).__name__}"
        )
    if problems:
        raise SpecError(problems)
    value, name = args["isvc"], args.get("name")
    if isinstance(value, str) and "\n" not in value:
        docs = _read_docs(resolve_isvc_path(value, base_dir))
    elif isinstance(value, dict):
        docs = [value]
    elif isinstance(value, str):
        docs = _read_docs(value)
    else:
        raise SpecError([f"args.isvc: expected a mapping or a path, got {type(value).__name__}"])
    return load_multimodel(docs + list(extra), name=name)
