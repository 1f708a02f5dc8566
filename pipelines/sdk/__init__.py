"""isvc's Python SDK: KServe's names, on a Ray cluster.

User code written for ``kserve`` runs with its imports changed::

    from pipelines.sdk import KServeClient, V1beta1InferenceService, V1beta1InferenceServiceSpec
    from pipelines.sdk import V1beta1PredictorSpec, V1beta1SKLearnSpec, constants
    from pipelines.sdk import client            # V1ObjectMeta, V1ResourceRequirements (or kubernetes')

- :class:`KServeClient` (:mod:`pipelines.sdk.kserve_client`): create / get / patch / replace /
  delete / is_isvc_ready / wait_isvc_ready, through the cluster's dashboard, sharing
  :mod:`pipelines.control.services` with ``isvc apply / get / delete``;
- the ``V1beta1*`` models (:mod:`pipelines.sdk.models`), serialised to KServe's YAML mapping;
- :class:`InferenceRESTClient` / :class:`RESTConfig` (:mod:`pipelines.sdk.inference_client`),
  KServe's asynchronous REST inference client over httpx.
"""

from pipelines.sdk import client, constants
from pipelines.sdk.inference_client import InferenceRESTClient, RESTConfig
from pipelines.sdk.kserve_client import KServeClient
from pipelines.sdk.models import (
    V1beta1AlibiExplainerSpec,
    V1beta1ARTExplainerSpec,
    V1beta1Batcher,
    V1beta1ExplainerSpec,
    V1beta1HuggingFaceRuntimeSpec,
    V1beta1InferenceService,
    V1beta1InferenceServiceList,
    V1beta1InferenceServiceSpec,
    V1beta1LightGBMSpec,
    V1beta1LoggerSpec,
    V1beta1ModelFormat,
    V1beta1ModelSpec,
    V1beta1ONNXRuntimeSpec,
    V1beta1PMMLSpec,
    V1beta1PredictorSpec,
    V1beta1SKLearnSpec,
    V1beta1TorchServeSpec,
    V1beta1TransformerSpec,
    V1beta1XGBoostSpec,
)

__all__ = [
    "InferenceRESTClient",
    "KServeClient",
    "RESTConfig",
    "V1beta1ARTExplainerSpec",
    "V1beta1AlibiExplainerSpec",
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
    "client",
    "constants",
]
