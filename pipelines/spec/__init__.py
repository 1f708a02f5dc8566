"""The ``serving.kserve.io/v1beta1`` InferenceService subset isvc honors: pydantic models,
the lint pass that names every bad field path, and loading YAML / Serve ``args``.

>>> isvc = load_isvc("tests/fixtures/specs/good/seed_sklearn_churn.yaml")
>>> isvc.spec.predictor.runtime_name, isvc.ignored_fields
('sklearn', ['spec.predictor.serviceAccountName'])
"""

from pipelines.spec._lint import parse_kserve_args
from pipelines.spec.load import isvc_from_serve_args, load_isvc, parse_isvc, resolve_isvc_path
from pipelines.spec.models import (
    ALIBI_TYPES,
    ANN_COALESCE_MAX_ROWS,
    ANN_COALESCE_WINDOW,
    ANN_COLLOCATE,
    ANN_DEPLOYMENT_MODE,
    ANN_EXPLAINER_MODEL,
    ANN_GPU_FRACTION,
    ANN_MAX_BODY,
    ANN_MAX_SCALE,
    ANN_METRIC,
    ANN_MIN_SCALE,
    ANN_TARGET,
    ANN_VERSION,
    RUNTIMES,
    SHAP_TYPES,
    ComponentSpec,
    ExplainerSpec,
    InferenceService,
    PredictorSpec,
    ResourceRequirements,
    RuntimeSpec,
    TransformerSpec,
)
from pipelines.spec.quantity import parse_cpu, parse_memory, parse_quantity

__all__ = [
    "ALIBI_TYPES",
    "ANN_COALESCE_MAX_ROWS",
    "ANN_COALESCE_WINDOW",
    "ANN_COLLOCATE",
    "ANN_EXPLAINER_MODEL",
    "ANN_GPU_FRACTION",
    "ANN_DEPLOYMENT_MODE",
    "ANN_MAX_BODY",
    "ANN_MAX_SCALE",
    "ANN_METRIC",
    "ANN_MIN_SCALE",
    "ANN_TARGET",
    "ANN_VERSION",
    "RUNTIMES",
    "SHAP_TYPES",
    "ComponentSpec",
    "ExplainerSpec",
    "InferenceService",
    "PredictorSpec",
    "ResourceRequirements",
    "RuntimeSpec",
    "TransformerSpec",
    "isvc_from_serve_args",
    "load_isvc",
    "parse_cpu",
    "parse_isvc",
    "parse_kserve_args",
    "parse_memory",
    "parse_quantity",
    "resolve_isvc_path",
]
