"""The stable Serve ``import_path``: ``pipelines.app:build``.

A Serve config names it; ``args`` is the InferenceService document itself, or
``{isvc: <inline mapping | path>}`` (a relative path follows the one rule of
:func:`pipelines.spec.resolve_isvc_path`)::

    applications:
      - name: ml-serving-churn-classifier
        route_prefix: /
        import_path: pipelines.app:build
        args:
          isvc: configs/isvc/churn.yaml

or, from the command line, ``serve run pipelines.app:build isvc=configs/isvc/churn.yaml``.
The routed layout that ``isvc render`` writes (one application per predictor revision, the
explainer, the ingress with the traffic table in its ``user_config``) uses ``build_predictor``,
``build_explainer`` and ``build_ingress`` (:mod:`pipelines.plan.layout`).
The deployments live in :mod:`pipelines._ray`. Many models (TrainedModels) on few replicas:
``import_path: pipelines.app:build_multimodel`` (see ``configs/multi-model.yaml``).
"""

from pipelines._ray import (
    DEFAULT_NUM_CPUS,
    build,
    build_app,
    build_explainer,
    build_ingress,
    build_predictor,
    deployment_options,
)
from pipelines._ray.multiplex import build_multimodel

__all__ = [
    "DEFAULT_NUM_CPUS",
    "build",
    "build_app",
    "build_explainer",
    "build_ingress",
    "build_multimodel",
    "build_predictor",
    "deployment_options",
]
