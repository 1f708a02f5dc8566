"""The only code that imports ``ray``: deployments, their options, the handle sink, the builder."""

from pipelines._ray.builder import build, build_app, build_explainer, build_ingress, build_predictor
from pipelines._ray.deployments import IngressDeployment, PredictorDeployment
from pipelines._ray.options import DEFAULT_NUM_CPUS, deployment_options
from pipelines._ray.sinks import HandleSink

__all__ = [
    "DEFAULT_NUM_CPUS",
    "HandleSink",
    "IngressDeployment",
    "PredictorDeployment",
    "build",
    "build_app",
    "build_explainer",
    "build_ingress",
    "build_predictor",
    "deployment_options",
]
