"""Pydantic models of the ``serving.kserve.io/v1beta1`` InferenceService subset isvc honors.

Every model derives from :class:`~pipelines.spec._lint._Model`, whose ``k8s_ignored`` and
``rejected`` class variables drive the lint pass; load documents with :mod:`pipelines.spec.load`.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from pipelines.spec._lint import (
    _CONTAINER_FIELDS,
    _POD_FIELDS,
    _join,
    _Model,
    _suggest,
    parse_kserve_args,
)
from pipelines.spec.quantity import check_quantity

__all__ = [
    "InferenceService",
    "PredictorSpec",
    "TransformerSpec",
    "ExplainerSpec",
]

API_VERSION: Literal["serving.kserve.io/v1beta1"] = "serving.kserve.io/v1beta1"
KIND: Literal["InferenceService"] = "InferenceService"
RUNTIMES = ("sklearn", "xgboost", "lightgbm", "pytorch", "onnx", "huggingface")
UNSUPPORTED_RUNTIMES = ("tensorflow", "triton", "paddle", "pmml")
ALIBI_TYPES = ("AnchorTabular", "AnchorText", "KernelShap", "TreeShap")
SHAP_TYPES = ("KernelShap", "TreeShap", "LinearShap", "PermutationShap", "ExactShap", "PartitionShap")

ANN_DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
ANN_TARGET = "autoscaling.knative.dev/target"
ANN_METRIC = "autoscaling.knative.dev/metric"
ANN_MIN_SCALE = ("autoscaling.knative.dev/minScale", "autoscaling.knative.dev/min-scale")
ANN_MAX_SCALE = ("autoscaling.knative.dev/maxScale", "autoscaling.knative.dev/max-scale")
ANN_COLLOCATE = "isvc.dev/collocate"
ANN_EXPLAINER_MODEL = "isvc.dev/explainer-model"
ANN_COALESCE_WINDOW = "isvc.dev/coalesce-window-ms"
ANN_COALESCE_MAX_ROWS = "isvc.dev/coalesce-max-rows"
ANN_VERSION = "isvc.dev/model-version"
ANN_MAX_BODY = "isvc.dev/max-body-size"
ANN_GPU_FRACTION = "isvc.dev/gpu-fraction"
ANN_SHADOW = "isvc.dev/shadow"
ANN_SHADOW_QUEUE = "isvc.dev/shadow-queue"
ANN_COLD_START = "isvc.dev/cold-start-timeout"
ANN_INITIAL_SCALE = ("autoscaling.knative.dev/initial-scale", "autoscaling.knative.dev/initialScale")
ANN_WINDOW = "autoscaling.knative.dev/window"
ANN_SCALE_DOWN_DELAY = "autoscaling.knative.dev/scale-down-delay"
ANN_TO_ZERO_RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
HONORED_ANNOTATIONS = frozenset([ANN_DEPLOYMENT_MODE, ANN_TARGET, ANN_METRIC, *ANN_MIN_SCALE, *ANN_MAX_SCALE])
HONORED_ANNOTATIONS |= {ANN_COLLOCATE, ANN_COALESCE_WINDOW, ANN_COALESCE_MAX_ROWS, ANN_VERSION, ANN_MAX_BODY}
HONORED_ANNOTATIONS |= {ANN_EXPLAINER_MODEL, ANN_GPU_FRACTION, ANN_SHADOW, ANN_SHADOW_QUEUE, ANN_COLD_START}
HONORED_ANNOTATIONS |= {*ANN_INITIAL_SCALE, ANN_WINDOW, ANN_SCALE_DOWN_DELAY, ANN_TO_ZERO_RETENTION}
ANN_MODELS_PER_REPLICA = "isvc.dev/models-per-replica"
"""Multi-model serving (TrainedModels, :mod:`pipelines.spec.trained`): models one predictor replica holds."""
HONORED_ANNOTATIONS |= {ANN_MODELS_PER_REPLICA}
_OUR_PREFIX = "isvc.dev/"
_REPORTED_DOMAINS = ("knative.dev/", "kserve.io/")

_SUPPORTED = ", ".join(RUNTIMES) + ", or custom (class: 'module:Class')"
_CONTAINERS_MSG = (
    "containers/images can't run here (there is no Kubernetes): serve a Python class instead "
    'with custom: {class: "module:Class"}'
)
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ResourceList(_Model):
    """``requests`` or ``limits``: ``cpu`` ("500m", "2"), ``memory`` ("512Mi", "1G"), GPUs."""

    cpu: str | None = Field(None, description="CPU cores; '500m' is half a core (Ray num_cpus).")
    memory: str | None = Field(None, description="Bytes with a suffix: '512Mi', '2Gi', '1G'.")
    gpu: str | None = Field(None, alias="nvidia.com/gpu", description="GPUs (Ray num_gpus).")
    k8s_ignored = frozenset({"ephemeral-storage"})

    @field_validator("cpu", "memory", "gpu")
    @classmethod
    def _check(cls, value: str | None) -> str | None:
        return check_quantity(value)


class ResourceRequirements(_Model):
    """Kubernetes ``resources``: ``requests`` is used, falling back to ``limits`` per key."""

    requests: ResourceList | None = Field(None, description="What a replica asks for.")
    limits: ResourceList | None = Field(None, description="Used where requests leave a key unset.")
    k8s_ignored = frozenset({"claims"})


class EnvVar(_Model):
    """One environment variable for the replica (``valueFrom`` has no meaning here)."""

    name: str = Field(description="Variable name.")
    value: str | None = Field(None, description="Its value.")
    k8s_ignored = frozenset({"valueFrom"})


class RuntimeSpec(_Model):
    """A built-in predictor runtime (``sklearn``, ``xgboost``, ... ``huggingface``)."""

    storage_uri: str | None = Field(
        None, description="file://, pvc://, s3://, gs://, https://, hf://, a path."
    )
    protocol_version: Literal["v1", "v2"] | None = Field(None, description="Default codec: v1 or v2.")
    args: list[Any] | dict[str, Any] | None = Field(
        None, description="KServe-style ['--model_name=x'] or a dict; passed to the runtime."
    )
    env: list[EnvVar] | None = Field(None, description="[{name, value}] or a {name: value} dict.")
    resources: ResourceRequirements | None = Field(None, description="Replica resources.")
    runtime_version: str | None = Field(None, description="Image tag in KServe; no effect here.")
    k8s_ignored = _CONTAINER_FIELDS

    @field_validator("args", mode="plain")
    @classmethod
    def _args_shape(cls, value: Any) -> Any:
        if value is None or isinstance(value, dict | list):
            return value
        raise ValueError(f"expected a list of '--name=value' strings or a mapping, got {value!r}")

    @field_validator("env", mode="before")
    @classmethod
    def _env_dict(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return [{"name": str(k), "value": None if v is None else str(v)} for k, v in value.items()]
        return value

    @classmethod
    def _lint_extra(cls, data: dict[str, Any], path: str, problems: list[str], ignored: list[str]) -> None:
        if isinstance(data.get("args"), list):
            bad: list[str] = []
            parse_kserve_args(data["args"], problems=bad)
            problems.extend(f"{_join(path, 'args')}{line}" for line in bad)

    def args_dict(self) -> dict[str, Any]:
        """``args`` as a dict: ``['--model_name=x', '--fast']`` → ``{'model_name': 'x', 'fast': True}``."""
        if isinstance(self.args, list):
            return parse_kserve_args(self.args)
        return dict(self.args or {})

    def env_dict(self) -> dict[str, str]:
        """``env`` as ``{name: value}`` (entries without a plain value are left out)."""
        return {e.name: e.value for e in self.env or [] if e.value is not None}


class ModelFormat(_Model):
    """``model.modelFormat``: which built-in runtime serves the model."""

    name: str = Field(description="One of " + _SUPPORTED.split(", or")[0] + ".")
    version: str | None = Field(None, description="Format version; informational.")

    @field_validator("name")
    @classmethod
    def _supported(cls, value: str) -> str:
        name = value.lower()
        if name in UNSUPPORTED_RUNTIMES:
            raise ValueError(f"the '{name}' runtime is not supported here; supported: {', '.join(RUNTIMES)}")
        if name not in RUNTIMES:
            raise ValueError(
                f"unknown model format {value!r}{_suggest(name, RUNTIMES)}; supported: " + ", ".join(RUNTIMES)
            )
        return name


class ModelSpec(RuntimeSpec):
    """``predictor.model``: KServe's generic form, ``modelFormat.name`` picks the runtime."""

    model_format: ModelFormat = Field(description="{name, version} of the model format.")
    k8s_ignored = _CONTAINER_FIELDS | {"runtime"}


class CustomSpec(RuntimeSpec):
    """``custom``: a Python class named by import string, isvc's answer to ``containers``."""

    class_path: str = Field(alias="class", description="Import string 'module:Class'.")

    @field_validator("class_path")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not _IMPORT_PATH.match(value):
            raise ValueError(f"expected an import string 'module:Class', got {value!r}")
        return value


class ExplainerRuntimeSpec(RuntimeSpec):
    """``explainer.alibi`` / ``explainer.shap``: explainer ``type``, artifact and ``config``."""

    type: str = Field(description="Explainer type, e.g. AnchorTabular or KernelShap.")
    config: dict[str, Any] | None = Field(None, description="Explainer keyword arguments.")
    types: ClassVar[tuple[str, ...]] = ()

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in cls.types:
            raise ValueError(f"{value!r} is not one of {', '.join(cls.types)}{_suggest(value, cls.types)}")
        return value


class AlibiSpec(ExplainerRuntimeSpec):
    """``explainer.alibi``: ``type`` is one of AnchorTabular, AnchorText, KernelShap, TreeShap."""

    types = ALIBI_TYPES


class ShapSpec(ExplainerRuntimeSpec):
    """``explainer.shap``: SHAP used directly; ``type`` names the explainer (KernelShap, TreeShap...)."""

    types = SHAP_TYPES


class Batcher(_Model):
    """``predictor.batcher``: dynamic batching in the predictor replica."""

    max_batch_size: int | None = Field(None, ge=1, description="Rows per model call at most.")
    max_latency: float | None = Field(None, gt=0, description="Milliseconds to wait to fill a batch.")
    k8s_ignored = frozenset({"timeout"})


class ComponentSpec(_Model):
    """Fields shared by predictor, transformer and explainer (KServe's ComponentExtensionSpec)."""

    min_replicas: int | None = Field(None, ge=0, description="Fewest replicas (0 scales to zero).")
    max_replicas: int | None = Field(None, ge=0, description="Most replicas (0: unset).")
    scale_target: float | None = Field(None, gt=0, description="Target ongoing requests per replica.")
    scale_metric: Literal["concurrency", "rps", "cpu", "memory"] | None = Field(
        None, description="Autoscaling metric."
    )
    container_concurrency: int | None = Field(None, ge=0, description="Max ongoing requests per replica.")
    timeout: float | None = Field(None, gt=0, description="Request timeout in seconds.")
    resources: ResourceRequirements | None = Field(None, description="Replica resources.")
    k8s_ignored = _POD_FIELDS
    rejected = {"containers": _CONTAINERS_MSG, "initContainers": _CONTAINERS_MSG}


class PredictorSpec(ComponentSpec):
    """``spec.predictor``: exactly one runtime, optional batcher and canary ``newModel``."""

    sklearn: RuntimeSpec | None = Field(None, description="scikit-learn (joblib/pickle).")
    xgboost: RuntimeSpec | None = Field(None, description="XGBoost booster.")
    lightgbm: RuntimeSpec | None = Field(None, description="LightGBM booster.")
    pytorch: RuntimeSpec | None = Field(None, description="TorchScript / torch model.")
    onnx: RuntimeSpec | None = Field(None, description="ONNX Runtime.")
    huggingface: RuntimeSpec | None = Field(None, description="transformers pipeline.")
    model: ModelSpec | None = Field(None, description="Generic form with modelFormat.name.")
    custom: CustomSpec | None = Field(None, description="Your predictor class.")
    batcher: Batcher | None = Field(None, description="Dynamic batching.")
    canary_traffic_percent: int | None = Field(None, ge=0, le=100, description="% of traffic to newModel.")
    new_model: PredictorSpec | None = Field(None, description="The canary predictor.")
    rejected = {
        **ComponentSpec.rejected,
        **{
            r: f"the '{r}' runtime is not supported here; supported: {_SUPPORTED}"
            for r in UNSUPPORTED_RUNTIMES
        },
    }

    @property
    def runtime_name(self) -> str:
        """The runtime key set on this predictor: ``'sklearn'``, ..., ``'model'`` or ``'custom'``."""
        return next(k for k in (*RUNTIMES, "model", "custom") if getattr(self, k) is not None)

    @property
    def runtime(self) -> RuntimeSpec:
        """The runtime block itself (a :class:`ModelSpec` or :class:`CustomSpec` for those keys)."""
        return getattr(self, self.runtime_name)

    @model_validator(mode="after")
    def _one_runtime(self) -> PredictorSpec:
        keys = [k for k in (*RUNTIMES, "model", "custom") if getattr(self, k) is not None]
        if len(keys) != 1:
            found = f"found {', '.join(keys)}" if keys else "found none"
            raise ValueError(f"set exactly one runtime ({_SUPPORTED}); {found}")
        if self.new_model is not None:
            if self.new_model.new_model is not None or self.new_model.canary_traffic_percent is not None:
                raise ValueError("newModel cannot itself hold newModel or canaryTrafficPercent")
        # canaryTrafficPercent without newModel is KServe's first create: all traffic to the one
        # model (a note in `isvc validate`); newModel without a percent needs isvc.dev/shadow (plan).
        return self


class TransformerSpec(ComponentSpec):
    """``spec.transformer``: your class, hosted in the ingress replica."""

    custom: CustomSpec = Field(description="The transformer class: {class: 'module:Class'}.")
    k8s_ignored = _POD_FIELDS | {"batcher"}


class ExplainerSpec(ComponentSpec):
    """``spec.explainer``: exactly one of ``alibi`` or ``shap``."""

    alibi: AlibiSpec | None = Field(None, description="Alibi explainer: " + ", ".join(ALIBI_TYPES))
    shap: ShapSpec | None = Field(None, description="SHAP explainer: " + ", ".join(SHAP_TYPES))
    k8s_ignored = _POD_FIELDS | {"batcher"}
    rejected = {**ComponentSpec.rejected, "art": "the ART explainer is not supported here; use alibi or shap"}

    @model_validator(mode="after")
    def _one_explainer(self) -> ExplainerSpec:
        if (self.alibi is None) == (self.shap is None):
            raise ValueError("set exactly one of alibi or shap")
        return self

    @property
    def kind(self) -> str:
        """``'alibi'`` or ``'shap'``."""
        return "alibi" if self.alibi is not None else "shap"

    @property
    def runtime(self) -> ExplainerRuntimeSpec:
        """The ``alibi`` or ``shap`` block."""
        spec = self.alibi if self.alibi is not None else self.shap
        assert spec is not None
        return spec


class Metadata(_Model):
    """``metadata``: the name is the model name in URLs; annotations tune scaling."""

    name: str = Field(description="Model name (DNS label).")
    namespace: str = Field("default", description="Serve application name is '{namespace}-{name}'.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Scaling and isvc.dev/ knobs.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form labels.")
    k8s_ignored = frozenset(
        """uid resourceVersion generation creationTimestamp managedFields finalizers ownerReferences selfLink
        deletionTimestamp deletionGracePeriodSeconds generateName""".split()
    )

    @field_validator("name", "namespace")
    @classmethod
    def _dns(cls, value: str) -> str:
        if len(value) > 63 or not _DNS_LABEL.match(value):
            raise ValueError(f"{value!r} is not a DNS label (lowercase letters, digits, '-', at most 63)")
        return value

    @field_validator("annotations", "labels", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: str(v).lower() if isinstance(v, bool) else v for k, v in value.items()}
        return value

    @classmethod
    def _lint_extra(cls, data: dict[str, Any], path: str, problems: list[str], ignored: list[str]) -> None:
        annotations = data.get("annotations")
        if not isinstance(annotations, dict):
            return
        ours = sorted(a for a in HONORED_ANNOTATIONS if a.startswith(_OUR_PREFIX))
        for key in annotations:
            p = _join(_join(path, "annotations"), str(key))
            if key in HONORED_ANNOTATIONS:
                continue
            if str(key).startswith(_OUR_PREFIX):
                problems.append(f"{p}: unknown isvc annotation{_suggest(str(key), ours)}")
            elif any(d in str(key) for d in _REPORTED_DOMAINS):
                ignored.append(p)


class InferenceServiceSpec(_Model):
    """``spec``: predictor (required), transformer and explainer."""

    predictor: PredictorSpec = Field(description="The model.")
    transformer: TransformerSpec | None = Field(None, description="Pre/post-processing class.")
    explainer: ExplainerSpec | None = Field(None, description="Explanations at :explain.")


class InferenceService(_Model):
    """A parsed InferenceService; ``ignored_fields`` lists the Kubernetes-only paths seen."""

    api_version: Literal["serving.kserve.io/v1beta1"] = Field(API_VERSION, description="API version.")
    kind: Literal["InferenceService"] = Field(KIND, description="Always InferenceService.")
    metadata: Metadata = Field(description="Name, namespace, annotations.")
    spec: InferenceServiceSpec = Field(description="The components.")
    k8s_ignored = frozenset({"status"})
    _ignored: list[str] = PrivateAttr(default_factory=list)

    @property
    def ignored_fields(self) -> list[str]:
        """Paths accepted but meaningless here, e.g. ``spec.predictor.serviceAccountName``."""
        return list(self._ignored)

    def to_dict(self) -> dict[str, Any]:
        """The document as KServe YAML would hold it (camelCase keys, unset fields left out)."""
        body = self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
        return {"apiVersion": self.api_version, "kind": self.kind, **body}
