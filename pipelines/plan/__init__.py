"""The plan: frozen nodes (predictor, transformer, explainer, ingress, traffic) and :func:`build_plan`.

>>> from pipelines.spec import load_isvc
>>> plan = build_plan(load_isvc("configs/isvc/churn.yaml"))
>>> plan.app_name, plan.ingress.name, plan.predictor.deployment
('ml-serving-churn-classifier', 'ingress', 'predictor')
"""

from pipelines.plan.build import build_plan
from pipelines.plan.nodes import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_ONGOING,
    Batching,
    ExplainerNode,
    IngressNode,
    PredictorNode,
    Resources,
    Scaling,
    ServicePlan,
    TransformerNode,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_ONGOING",
    "Batching",
    "ExplainerNode",
    "IngressNode",
    "PredictorNode",
    "Resources",
    "Scaling",
    "ServicePlan",
    "TransformerNode",
    "build_plan",
]
