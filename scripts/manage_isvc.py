# scripts/manage_isvc.py — KServe Python SDK for InferenceService management
from __future__ import annotations

from pipelines.sdk import (
    KServeClient,
    V1beta1HuggingFaceRuntimeSpec,  # noqa: F401
    V1beta1InferenceService,
    V1beta1InferenceServiceSpec,
    V1beta1PredictorSpec,
    V1beta1SKLearnSpec,
    client,
    constants,
)


def create_sklearn_service(
    name: str,
    namespace: str,
    storage_uri: str,
    sa_name: str = "kserve-s3-sa",
) -> V1beta1InferenceService:
    """Create an sklearn InferenceService."""
    isvc = V1beta1InferenceService(
        api_version=constants.KSERVE_V1BETA1,
        kind=constants.KSERVE_KIND,
        metadata=client.V1ObjectMeta(
            name=name,
            namespace=namespace,
            annotations={
                "serving.kserve.io/deploymentMode": "Serverless",
            },
        ),
        spec=V1beta1InferenceServiceSpec(
            predictor=V1beta1PredictorSpec(
                service_account_name=sa_name,
                sklearn=V1beta1SKLearnSpec(
                    storage_uri=storage_uri,
                    resources=client.V1ResourceRequirements(
                        requests={"cpu": "500m", "memory": "512Mi"},
                        limits={"cpu": "2", "memory": "2Gi"},
                    ),
                ),
            )
        ),
    )
    kserve_client = KServeClient()
    kserve_client.create(isvc, namespace=namespace)
    print(f"Created InferenceService: {name} in {namespace}")
    return isvc


def wait_for_ready(name: str, namespace: str, timeout: int = 300) -> str:
    """Poll until InferenceService is ready and return its URL."""
    kserve_client = KServeClient()
    kserve_client.wait_isvc_ready(name, namespace=namespace, timeout_seconds=timeout)
    isvc = kserve_client.get(name, namespace=namespace)
    url = isvc.status.url
    print(f"Ready: {url}")
    return url


# fmt: off
def rollout_canary(
    name: str,
    namespace: str,
    new_storage: str,
    canary_pct: int = 20,
) -> None:
    """Patch InferenceService to add canary traffic split."""
    kserve_client = KServeClient()
    patch = {
        "spec": {
            "predictor": {
                "canaryTrafficPercent": canary_pct,
                "newModel": {
                    "sklearn": {"storageUri": new_storage}
                },
            }
        }
    }
    kserve_client.patch(name, patch, namespace=namespace)
    print(f"Canary rollout: {canary_pct}% to new model for {name}")


if __name__ == "__main__":
    create_sklearn_service(
        name="churn-classifier",
        namespace="ml-serving",
        storage_uri="s3://my-models/churn/v1/",
    )
    wait_for_ready("churn-classifier", "ml-serving")
