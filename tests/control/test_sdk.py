"""The SDK: KServe's model objects serialise to the KServe YAML mapping; KServeClient's
create → get → patch (the seed's canary dict) → delete over an in-memory dashboard; the
InferenceRESTClient's URLs and errors over httpx's MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pipelines.sdk import (
    InferenceRESTClient,
    KServeClient,
    RESTConfig,
    V1beta1InferenceService,
    V1beta1InferenceServiceSpec,
    V1beta1PredictorSpec,
    V1beta1SKLearnSpec,
    client,
    constants,
)
from pipelines.sdk.kserve_client import ResourceDict, _wrap
from pipelines.sdk.models import sanitize
from tests.control.conftest import FakeDashboard


def seed_isvc(uri: str = "s3://my-models/churn/v1/") -> Any:
    """What the seed's create_sklearn_service builds."""
    return V1beta1InferenceService(
        api_version=constants.KSERVE_V1BETA1,
        kind=constants.KSERVE_KIND,
        metadata=client.V1ObjectMeta(
            name="churn-classifier",
            namespace="ml-serving",
            annotations={"serving.kserve.io/deploymentMode": "Serverless"},
        ),
        spec=V1beta1InferenceServiceSpec(
            predictor=V1beta1PredictorSpec(
                service_account_name="kserve-s3-sa",
                sklearn=V1beta1SKLearnSpec(
                    storage_uri=uri,
                    resources=client.V1ResourceRequirements(
                        requests={"cpu": "500m", "memory": "512Mi"}, limits={"cpu": "2", "memory": "2Gi"}
                    ),
                ),
            )
        ),
    )


SEED_YAML = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
        "name": "churn-classifier",
        "namespace": "ml-serving",
    },
    "spec": {
        "predictor": {
            "serviceAccountName": "kserve-s3-sa",
            "sklearn": {
                "resources": {
                    "limits": {"cpu": "2", "memory": "2Gi"},
                    "requests": {"cpu": "500m", "memory": "512Mi"},
                },
                "storageUri": "s3://my-models/churn/v1/",
            },
        }
    },
}


def test_objects_serialise_to_the_kserve_yaml_mapping() -> None:
    assert seed_isvc().to_dict() == SEED_YAML
    assert sanitize(seed_isvc()) == SEED_YAML
    assert (
        constants.KSERVE_V1BETA1 == "serving.kserve.io/v1beta1"
        and constants.KSERVE_KIND == "InferenceService"
    )
    pred = V1beta1PredictorSpec(
        min_replicas=0, canary_traffic_percent=20, new_model={"sklearn": {"storageUri": "x"}}
    )
    assert pred.to_dict() == {
        "minReplicas": 0,
        "canaryTrafficPercent": 20,
        "newModel": {"sklearn": {"storageUri": "x"}},
    }
    with pytest.raises(TypeError, match="storageUri"):
        V1beta1SKLearnSpec(storageUri="x")
    assert V1beta1SKLearnSpec(storage_uri="a") == V1beta1SKLearnSpec(storage_uri="a")


def test_resource_dicts_read_by_key_and_by_attribute() -> None:
    obj: Any = _wrap({"status": {"url": "u", "components": {"predictor": {"traffic": [{"percent": 1}]}}}})
    assert isinstance(_wrap({"a": {}}), ResourceDict) and issubclass(ResourceDict, dict)
    assert obj.status.url == obj["status"]["url"] == "u"
    assert obj.status.components.predictor.traffic[0].percent == 1
    meta: Any = _wrap({"creationTimestamp": "t"})
    assert meta.creation_timestamp == "t"
    with pytest.raises(AttributeError):
        _ = obj.nope
    assert json.loads(json.dumps(obj)) == obj


def test_kserve_client_create_get_patch_delete(fake_dashboard: FakeDashboard) -> None:
    kserve = KServeClient()
    created = kserve.create(seed_isvc(), namespace="ml-serving")
    assert created["metadata"]["generation"] == 1 and created["spec"] == SEED_YAML["spec"]
    with pytest.raises(RuntimeError, match="409"):
        kserve.create(seed_isvc(), namespace="ml-serving")
    kserve.wait_isvc_ready(
        "churn-classifier", namespace="ml-serving", timeout_seconds=1, polling_interval=0.01
    )
    assert kserve.is_isvc_ready("churn-classifier", namespace="ml-serving")
    isvc = kserve.get("churn-classifier", namespace="ml-serving")
    assert isvc.status.url == "http://127.0.0.1:8000/v1/models/churn-classifier"
    assert isvc["status"]["components"]["predictor"]["traffic"][0]["percent"] == 100
    with pytest.raises(RuntimeError, match="404"):
        kserve.get("churn-classifier")  # KServe's default namespace is "default"
    patch = {
        "spec": {
            "predictor": {
                "canaryTrafficPercent": 20,
                "newModel": {"sklearn": {"storageUri": "s3://my-models/churn/v2/"}},
            }
        }
    }
    out = kserve.patch("churn-classifier", patch, namespace="ml-serving")
    assert out["metadata"]["generation"] == 2
    got = kserve.get("churn-classifier", namespace="ml-serving")
    traffic = got["status"]["components"]["predictor"]["traffic"]
    assert [(t["tag"], t["percent"], t["latestRevision"]) for t in traffic] == [
        ("prev", 80, False),
        ("latest", 20, True),
    ]
    assert got.spec.predictor.sklearn.storageUri == "s3://my-models/churn/v1/"
    assert got.spec.predictor.newModel.sklearn.storageUri == "s3://my-models/churn/v2/"
    assert [i["metadata"]["name"] for i in kserve.get(namespace="ml-serving")["items"]] == [
        "churn-classifier"
    ]
    replaced = kserve.replace(
        "churn-classifier", seed_isvc("s3://my-models/churn/v3/"), namespace="ml-serving"
    )
    assert replaced["spec"]["predictor"]["sklearn"]["storageUri"] == "s3://my-models/churn/v3/"
    assert kserve.delete("churn-classifier", namespace="ml-serving")["status"] == "Success"
    assert fake_dashboard.config is not None and fake_dashboard.config["applications"] == []
    with pytest.raises(RuntimeError, match="404"):
        kserve.delete("churn-classifier", namespace="ml-serving")


def test_wait_isvc_ready_times_out_with_kserves_message(
    fake_dashboard: FakeDashboard, monkeypatch: Any
) -> None:
    from pipelines.control import plane

    kserve = KServeClient()
    kserve.create(seed_isvc())
    monkeypatch.setattr(plane.ControlPlane, "ingress_info", lambda self, base, svc: None)
    with pytest.raises(RuntimeError, match="Timeout to start the InferenceService churn-classifier"):
        kserve.wait_isvc_ready("churn-classifier", "ml-serving", timeout_seconds=0.02, polling_interval=0.01)


def test_a_kserve_style_canary_by_editing_the_predictor(fake_dashboard: FakeDashboard) -> None:
    kserve = KServeClient()
    kserve.create(seed_isvc())
    kserve.patch(
        "churn-classifier",
        {
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": 10,
                    "sklearn": {"storageUri": "s3://my-models/churn/v2/"},
                }
            }
        },
        namespace="ml-serving",
    )
    got = kserve.get("churn-classifier", "ml-serving")
    assert [(t["tag"], t["percent"]) for t in got.status.components.predictor.traffic] == [
        ("prev", 90),
        ("latest", 10),
    ]
    assert "newModel" not in got.spec.predictor  # the stored spec is the user's, as KServe keeps it


def mock_client(protocol: str, seen: list[httpx.Request], answer: Any = None, status: int = 200) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=answer if answer is not None else {"ready": True, "live": True})

    return InferenceRESTClient(RESTConfig(protocol=protocol, transport=httpx.MockTransport(handle)))


async def test_inference_rest_client_urls() -> None:
    seen: list[httpx.Request] = []
    async with mock_client("v1", seen, {"predictions": [1]}) as c:
        assert await c.infer("http://h:1", {"instances": [[1]]}, model_name="m") == {"predictions": [1]}
        await c.infer("http://h:1/v1/models/m", {"instances": [[1]]}, model_name="m")  # a status.url
        await c.infer("http://h:1/ns/m", {"instances": [[1]]}, model_name="m")  # a route prefix
        await c.explain("http://h:1", "m", {"instances": [[1]]})
        await c.is_model_ready("http://h:1", "m")
        with pytest.raises(ValueError):
            await c.infer("http://h:1", {}, model_name=None)
    async with mock_client("v2", seen, {"ready": True, "live": True, "outputs": []}) as c:
        await c.infer("http://h:1", {"inputs": []}, model_name="m")
        assert await c.is_server_ready("http://h:1")
        assert await c.is_server_live("http://h:1")
        assert await c.is_model_ready("http://h:1", "m")
        await c.get_model_metadata("http://h:1", "m")
    assert [f"{r.method} {r.url.path}" for r in seen] == [
        "POST /v1/models/m:predict",
        "POST /v1/models/m:predict",
        "POST /ns/m/v1/models/m:predict",
        "POST /v1/models/m:explain",
        "GET /v1/models/m",
        "POST /v2/models/m/infer",
        "GET /v2/health/ready",
        "GET /v2/health/live",
        "GET /v2/models/m/ready",
        "GET /v2/models/m",
    ]


async def test_inference_rest_client_errors_carry_the_servers_error() -> None:
    seen: list[httpx.Request] = []
    async with mock_client("v1", seen, {"error": "bad rows"}, status=400) as c:
        with pytest.raises(httpx.HTTPStatusError, match="bad rows, '400 Bad Request'"):
            await c.infer("http://h:1", {"instances": []}, model_name="m")
    async with mock_client("v1", seen, {"error": "not ready"}, status=503) as c:
        assert await c.is_model_ready("http://h:1", "m") is False
    async with mock_client("v1", seen) as c:
        with pytest.raises(ValueError, match="Unsupported protocol v1"):
            await c.is_server_ready("http://h:1")


async def test_binary_outputs_are_decoded() -> None:
    import numpy as np

    head = json.dumps(
        {"outputs": [{"name": "p", "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": 16}}]}
    ).encode()
    body = head + np.array([0.25, 0.5]).tobytes()

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"inference-header-content-length": str(len(head))})

    async with InferenceRESTClient(RESTConfig(protocol="v2", transport=httpx.MockTransport(handle))) as c:
        out = await c.infer("http://h:1", {"inputs": []}, model_name="m")
    assert out["outputs"][0]["data"] == [0.25, 0.5]
