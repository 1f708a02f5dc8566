"""KServe's ``V1beta1*`` model classes, as far as isvc's dialect goes: keyword arguments in
snake_case, serialised (:func:`sanitize`, ``.to_dict()``) to the KServe YAML mapping in
camelCase, unset (``None``) fields left out.

>>> V1beta1PredictorSpec(min_replicas=1, sklearn=V1beta1SKLearnSpec(storage_uri="s3://b/m")).to_dict()
{'minReplicas': 1, 'sklearn': {'storageUri': 's3://b/m'}}

Unlike KServe's generated models (whose ``to_dict()`` keeps the Python names), ``to_dict()``
gives the wire form directly. Any field value may also be a plain mapping, and any object with
an ``attribute_map`` (kubernetes' own ``V1ObjectMeta``, ``V1ResourceRequirements``, …) is
serialised by it.
"""

from __future__ import annotations

import datetime as _dt
import pprint
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "sanitize",
    "V1beta1AlibiExplainerSpec",
    "V1beta1ARTExplainerSpec",
    "V1beta1Batcher",
    "V1beta1ExplainerSpec",
    "V1beta1HuggingFaceRuntimeSpec",
    "V1beta1InferenceService",
    "V1beta1InferenceServiceList",
    "V1beta1InferenceServiceSpec",
    "V1beta1LightGBMSpec",
    "V1beta1LoggerSpec",
    "V1beta1ModelFormat",
    "V1beta1ModelSpec",
    "V1beta1ONNXRuntimeSpec",
    "V1beta1PMMLSpec",
    "V1beta1PredictorSpec",
    "V1beta1SKLearnSpec",
    "V1beta1TorchServeSpec",
    "V1beta1TransformerSpec",
    "V1beta1XGBoostSpec",
]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def sanitize(obj: Any) -> Any:
    """The JSON/YAML form of ``obj``: models by their ``attribute_map``, ``None`` left out."""
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, list | tuple):
        return [sanitize(v) for v in obj]
    if isinstance(obj, _dt.datetime | _dt.date):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return {str(k): sanitize(v) for k, v in obj.items() if v is not None}
    attribute_map = getattr(obj, "attribute_map", None)
    if isinstance(attribute_map, Mapping):
        return {
            json_key: sanitize(getattr(obj, attr))
            for attr, json_key in attribute_map.items()
            if getattr(obj, attr, None) is not None
        }
    raise TypeError(f"cannot serialise {type(obj).__name__} into an InferenceService document")


class _Model:
    """A KServe model object: attributes named in ``attribute_map`` (Python name → JSON key)."""

    attribute_map: ClassVar[dict[str, str]] = {}

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self.attribute_map))
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments: {', '.join(unknown)}")
        for attr in self.attribute_map:
            setattr(self, attr, kwargs.get(attr))

    def __getattr__(self, name: str) -> Any:  # only for names not set in __init__ (typing: Any)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = sanitize(self)
        return out

    def to_str(self) -> str:
        return pprint.pformat(self.to_dict())

    def __repr__(self) -> str:
        return self.to_str()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and self.to_dict() == other.to_dict()

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]


def _fields(fields: str, **renames: str) -> dict[str, str]:
    return {a: renames.get(a, _camel(a)) for a in fields.split()}


_CONTAINER = """args command env env_from image image_pull_policy lifecycle liveness_probe name ports
readiness_probe resize_policy resources restart_policy security_context startup_probe stdin stdin_once
termination_message_path termination_message_policy tty volume_devices volume_mounts working_dir"""
_RUNTIME = _CONTAINER + " protocol_version runtime_version storage storage_uri"
_RUNTIMES = "huggingface lightgbm model onnx paddle pmml pytorch sklearn tensorflow triton xgboost"
_COMPONENT = """annotations batcher canary_traffic_percent container_concurrency deployment_strategy labels
logger max_replicas min_replicas scale_metric scale_target timeout auto_scaling"""
_POD = """active_deadline_seconds affinity automount_service_account_token containers dns_config dns_policy
enable_service_links host_aliases host_ipc host_network host_pid hostname image_pull_secrets init_containers
node_name node_selector preemption_policy priority priority_class_name readiness_gates runtime_class_name
scheduler_name security_context service_account service_account_name tolerations volumes worker_spec"""


class V1beta1SKLearnSpec(_Model):
    """``predictor.sklearn``."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME)


class V1beta1XGBoostSpec(_Model):
    """``predictor.xgboost``."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME)


class V1beta1LightGBMSpec(_Model):
    """``predictor.lightgbm``."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME)


class V1beta1ONNXRuntimeSpec(_Model):
    """``predictor.onnx``."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME)


class V1beta1TorchServeSpec(_Model):
    """``predictor.pytorch``."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME)


class V1beta1PMMLSpec(_Model):
    """``predictor.pmml`` (isvc rejects it, saying what to do instead)."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME)


class V1beta1HuggingFaceRuntimeSpec(_Model):
    """``predictor.huggingface``."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME)


class V1beta1ModelFormat(_Model):
    """``predictor.model.modelFormat``."""

    attribute_map: ClassVar[dict[str, str]] = _fields("name version")


class V1beta1ModelSpec(_Model):
    """``predictor.model`` (modelFormat + runtime)."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME + " model_format runtime")


class V1beta1Batcher(_Model):
    """``<component>.batcher``."""

    attribute_map: ClassVar[dict[str, str]] = _fields("max_batch_size max_latency timeout")


class V1beta1LoggerSpec(_Model):
    """``<component>.logger``."""

    attribute_map: ClassVar[dict[str, str]] = _fields("mode url")


class V1beta1AlibiExplainerSpec(_Model):
    """``explainer.alibi`` (AnchorTabular, ...)."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME + " config type")


class V1beta1ARTExplainerSpec(_Model):
    """``explainer.art``."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_RUNTIME + " config type")


class V1beta1PredictorSpec(_Model):
    """``spec.predictor``: one runtime (sklearn, xgboost, ..., or ``model``), scaling, and isvc's
    ``new_model`` (``newModel``: the canary's predictor)."""

    attribute_map: ClassVar[dict[str, str]] = _fields(
        _COMPONENT + " " + _POD + " " + _RUNTIMES + " new_model"
    )


class V1beta1TransformerSpec(_Model):
    """``spec.transformer``: isvc's ``custom: {class: module:Class, storageUri, args}``."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_COMPONENT + " " + _POD + " custom")


class V1beta1ExplainerSpec(_Model):
    """``spec.explainer``."""

    attribute_map: ClassVar[dict[str, str]] = _fields(_COMPONENT + " " + _POD + " alibi art shap")


class V1beta1InferenceServiceSpec(_Model):
    """``spec``."""

    attribute_map: ClassVar[dict[str, str]] = _fields("predictor transformer explainer")


class V1beta1InferenceService(_Model):
    """An InferenceService: ``api_version`` (``constants.KSERVE_V1BETA1``), ``kind``, ``metadata``
    (``client.V1ObjectMeta``), ``spec``."""

    attribute_map: ClassVar[dict[str, str]] = _fields("api_version kind metadata spec status")


class V1beta1InferenceServiceList(_Model):
    """A list of InferenceServices."""

    attribute_map: ClassVar[dict[str, str]] = _fields("api_version items kind metadata")
