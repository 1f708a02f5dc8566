"""Deployment manifests rendered from a Serve config and its plans (no Ray, no Kubernetes client).

:func:`rayservice` turns ``render_serve_config``'s output and the ServicePlans behind it into a
KubeRay ``ray.io/v1`` ``RayService``.
"""

from pipelines.render.rayservice import (
    CPU_POD,
    DEFAULT_RAY_IMAGE,
    GPU_POD,
    HEAD_POD,
    PodShape,
    rayservice,
    rayservice_name,
    rayservice_yaml,
)

__all__ = [
    "CPU_POD",
    "DEFAULT_RAY_IMAGE",
    "GPU_POD",
    "HEAD_POD",
    "PodShape",
    "rayservice",
    "rayservice_name",
    "rayservice_yaml",
]
