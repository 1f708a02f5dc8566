"""KServe's SDK constants (``kserve.constants``), the names user code reads.

>>> KSERVE_V1BETA1, KSERVE_KIND
('serving.kserve.io/v1beta1', 'InferenceService')
"""

from __future__ import annotations

import os

KSERVE_GROUP = "serving.kserve.io"
KSERVE_KIND = "InferenceService"
KSERVE_KIND_INFERENCESERVICE = KSERVE_KIND
KSERVE_PLURAL = "inferenceservices"
KSERVE_PLURAL_INFERENCESERVICE = KSERVE_PLURAL
KSERVE_KIND_TRAINEDMODEL = "TrainedModel"
KSERVE_PLURAL_TRAINEDMODEL = "trainedmodels"
KSERVE_V1BETA1_VERSION = "v1beta1"
KSERVE_V1ALPHA1_VERSION = "v1alpha1"
KSERVE_V1BETA1 = KSERVE_GROUP + "/" + KSERVE_V1BETA1_VERSION
KSERVE_V1ALPHA1 = KSERVE_GROUP + "/" + KSERVE_V1ALPHA1_VERSION
KSERVE_LOGLEVEL = os.environ.get("KSERVE_LOGLEVEL", "INFO").upper()

DEFAULT_NAMESPACE = "default"
"""Where an InferenceService without ``metadata.namespace`` lives (KServe outside a cluster)."""

OBSERVED_GENERATION = "observedGeneration"
GENERATION = "generation"
INFERENCE_CONTENT_LENGTH_HEADER = "inference-header-content-length"
V1_ROUTE_PREFIX = "/v1"
V2_ROUTE_PREFIX = "/v2"
