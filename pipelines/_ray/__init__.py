"""The only code that imports ``ray``: deployments, their options, the handle sink, the builder."""

from pipelines._ray.builder import build, build_app
from pipelines._ray.options import DEFAULT_NUM_CPUS, deployment_options

__all__ = ["DEFAULT_NUM_CPUS", "build", "build_app", "deployment_options"]
