"""Serving a runtime the way a user's InferenceService does: spec → plan → in-process V1/V2 app.

Not a test module: the runtime tests import it (as they import ``tests.helpers``).
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from pipelines.plan import ServicePlan, build_plan
from pipelines.spec import parse_isvc
from tests.helpers import make_client

NAME = "m"


def plan_for(predictor: dict[str, Any], name: str = NAME) -> ServicePlan:
    """The plan of ``spec.predictor: <predictor>`` (e.g. ``{"xgboost": {"storageUri": ...}}``)."""
    return build_plan(parse_isvc({"metadata": {"name": name}, "spec": {"predictor": predictor}}))


async def client_for(predictor: dict[str, Any], name: str = NAME) -> httpx.AsyncClient:
    """An in-process client over the V1/V2 app serving ``spec.predictor: <predictor>``."""
    return await make_client(plan_for(predictor, name))


async def v1_predict(client: httpx.AsyncClient, instances: Any, name: str = NAME) -> Any:
    r = await client.post(f"/v1/models/{name}:predict", json={"instances": instances})
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


async def v2_infer(client: httpx.AsyncClient, inputs: list[dict[str, Any]], name: str = NAME) -> list[Any]:
    r = await client.post(f"/v2/models/{name}/infer", json={"id": "r1", "inputs": inputs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "r1" and body["model_name"] == name
    return body["outputs"]


def tensor(name: str, array: np.ndarray, datatype: str) -> dict[str, Any]:
    """A V2 JSON input tensor of ``array``."""
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype,
        "data": array.reshape(-1).tolist(),
    }


def as_array(output: dict[str, Any]) -> np.ndarray:
    """A V2 JSON output tensor as an array of its shape."""
    return np.asarray(output["data"]).reshape(output["shape"])
