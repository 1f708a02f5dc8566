"""Endpoints added to the data plane: ``:explain`` without an explainer, V2 metadata and
model versions, the request body limit, back-pressure / timeout, and which tensors the
endpoint advertises (``endpoint_tensors``). In-process httpx → ASGI, no Ray."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from pipelines.dataplane import ModelPipeline, create_app, endpoint_tensors
from pipelines.errors import UserCodeError
from tests.helpers import ROW, churn_plan, make_client
from transformers_.base import Transformer

MODEL = "churn-classifier"
PREDICTOR_IN = [{"name": "input-0", "datatype": "FP64", "shape": [-1, 5]}]
PREDICTOR_OUT = [{"name": "output-0", "datatype": "FP64", "shape": [-1, 2]}]


@pytest.fixture
async def client(churn_artifacts: Path):
    async with await make_client(churn_plan(churn_artifacts)) as c:
        yield c


def v2_body(rows: int, **extra: Any) -> dict[str, Any]:
    data = [list(ROW.values())] * rows
    return {"inputs": [{"name": "features", "shape": [rows, 5], "datatype": "FP64", "data": data}], **extra}


def local_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def assert_error(r: httpx.Response, status: int, *needles: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    for needle in needles:
        assert needle in body["error"], body["error"]
    return body["error"]


# ---------------------------------------------------------------------------- :explain


async def test_explain_without_explainer_is_501_json(client):
    r = await client.post(f"/v1/models/{MODEL}:explain", json={"instances": [ROW]})
    assert_error(r, 501, "no explainer configured")
    # The server keeps serving predictions.
    assert (await client.post(f"/v1/models/{MODEL}:predict", json={"instances": [ROW]})).status_code == 200


async def test_explain_unknown_model_is_404_json(client):
    r = await client.post("/v1/models/nope:explain", json={"instances": [ROW]})
    assert_error(r, 404, "nope")


async def test_explain_with_explainer_calls_it_with_the_body():
    seen: list[dict[str, Any]] = []

    async def explain(body, headers):
        seen.append(body)
        return {"explanations": ["because"]}

    async def predict(batch):
        return np.zeros(len(batch))

    app = create_app({"m": ModelPipeline("m", predict=predict, explain=explain)})
    async with local_client(app) as c:
        r = await c.post("/v1/models/m:explain", json={"instances": [[1.0, 2.0]]})
    assert r.status_code == 200 and r.json() == {"explanations": ["because"]}
    assert seen == [{"instances": [[1.0, 2.0]]}]


# ---------------------------------------------------------------------------- V2 metadata


async def test_v2_metadata_lists_the_endpoint_tensors(client):
    r = await client.get(f"/v2/models/{MODEL}")
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["name"] == MODEL
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "features", "datatype": "FP64", "shape": [-1, 5]}]
    assert meta["outputs"] == [
        {"name": "churn_probability", "datatype": "FP64", "shape": [-1]},
        {"name": "risk_tier", "datatype": "BYTES", "shape": [-1]},
    ]


async def test_v2_infer_each_advertised_output_matches_metadata(client):
    meta = (await client.get(f"/v2/models/{MODEL}")).json()
    rows = 3
    for advertised in meta["outputs"]:
        body = v2_body(rows, outputs=[{"name": advertised["name"]}])
        r = await client.post(f"/v2/models/{MODEL}/infer", json=body)
        assert r.status_code == 200, r.text
        (out,) = r.json()["outputs"]
        assert out["name"] == advertised["name"]
        assert out["datatype"] == advertised["datatype"]
        assert out["shape"] == [rows if d == -1 else d for d in advertised["shape"]]
        assert len(out["data"]) == rows


async def test_v2_version_routes(client):
    r = await client.post(f"/v2/models/{MODEL}/versions/1/infer", json=v2_body(2))
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == "1"
    assert (await client.get(f"/v2/models/{MODEL}/versions/1")).json()["versions"] == ["1"]
    assert (await client.get(f"/v2/models/{MODEL}/versions/1/ready")).status_code == 200

    assert_error(await client.get(f"/v2/models/{MODEL}/versions/2"), 404, "versions/2")
    assert_error(await client.get(f"/v2/models/{MODEL}/versions/2/ready"), 404, "versions/2")
    assert_error(
        await client.post(f"/v2/models/{MODEL}/versions/2/infer", json=v2_body(1)), 404, "versions/2"
    )


async def test_plan_version_is_served(churn_artifacts: Path):
    async with await make_client(churn_plan(churn_artifacts, version="7")) as c:
        meta = (await c.get(f"/v2/models/{MODEL}")).json()
        assert meta["versions"] == ["7"]
        for path in (f"/v2/models/{MODEL}/infer", f"/v2/models/{MODEL}/versions/7/infer"):
            r = await c.post(path, json=v2_body(1))
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == "7"
        assert_error(await c.get(f"/v2/models/{MODEL}/versions/1"), 404)
        assert_error(await c.post(f"/v2/models/{MODEL}/versions/1/infer", json=v2_body(1)), 404)


# ---------------------------------------------------------------------------- body limit


async def test_body_over_limit_is_413_naming_limit_and_annotation(churn_artifacts: Path):
    body = {"instances": [ROW] * 20}
    assert len(json.dumps(body, separators=(",", ":"))) > 1000
    async with await make_client(churn_plan(churn_artifacts), max_body_bytes=1000) as c:
        r = await c.post(f"/v1/models/{MODEL}:predict", json=body)
        assert_error(r, 413, "1000 bytes", "isvc.dev/max-body-size")
        big_v2 = json.dumps(v2_body(100), separators=(",", ":")).encode()
        assert len(big_v2) > 1000
        r = await c.post(f"/v2/models/{MODEL}/infer", content=big_v2)
        assert_error(r, 413, "1000 bytes", "isvc.dev/max-body-size")
        small = await c.post(f"/v1/models/{MODEL}:predict", json={"instances": [ROW]})
        assert small.status_code == 200, small.text


async def test_chunked_body_over_limit_is_413(churn_artifacts: Path):
    chunk = json.dumps({"instances": [ROW] * 20}).encode()
    assert len(chunk) > 1000

    async def stream():
        for i in range(0, len(chunk), 100):
            yield chunk[i : i + 100]

    async with await make_client(churn_plan(churn_artifacts), max_body_bytes=1000) as c:
        request = c.build_request("POST", f"/v1/models/{MODEL}:predict", content=stream())
        assert "content-length" not in request.headers
        r = await c.send(request)
        assert_error(r, 413, "1000 bytes", "isvc.dev/max-body-size")

        async def small_stream():
            yield json.dumps({"instances": [ROW]}).encode()

        r = await c.post(f"/v1/models/{MODEL}:predict", content=small_stream())
        assert r.status_code == 200, r.text
        r = await c.post(f"/v1/models/{MODEL}:predict", json={"instances": [ROW]})
        assert r.status_code == 200, r.text


async def test_body_limit_in_mib_is_named_in_mib():
    async def predict(batch):
        return np.zeros(len(batch))

    app = create_app({"m": ModelPipeline("m", predict=predict)}, max_body_bytes=2**20)
    async with local_client(app) as c:
        r = await c.post("/v1/models/m:predict", content=b" " * (2**20 + 1))
        assert_error(r, 413, "request body of 1048577 bytes", "limit of 1 MiB", "isvc.dev/max-body-size")
        r = await c.post("/v1/models/m:predict", json={"instances": [[1.0]]})
        assert r.status_code == 200


# ---------------------------------------------------------------------------- overload and timeout


async def test_over_max_inflight_is_503_then_serves_again():
    started, release = asyncio.Event(), asyncio.Event()

    async def predict(batch):
        started.set()
        await release.wait()
        return np.zeros(len(batch))

    app = create_app({"m": ModelPipeline("m", predict=predict)}, max_inflight=1)
    async with local_client(app) as c:
        first = asyncio.create_task(c.post("/v1/models/m:predict", json={"instances": [[1.0]]}))
        await asyncio.wait_for(started.wait(), 5)
        second = await c.post("/v1/models/m:predict", json={"instances": [[1.0]]})
        assert_error(second, 503, "overloaded")
        v2 = await c.post(
            "/v2/models/m/infer",
            json={"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]},
        )
        assert_error(v2, 503, "overloaded")
        release.set()
        r = await asyncio.wait_for(first, 5)
        assert r.status_code == 200 and r.json() == {"predictions": [0.0]}
        again = await c.post("/v1/models/m:predict", json={"instances": [[1.0]]})
        assert again.status_code == 200


async def test_timeout_is_504_and_frees_the_slot():
    never = asyncio.Event()

    async def predict(batch):
        if batch[0][0] > 0:
            await never.wait()
        return np.zeros(len(batch))

    app = create_app({"m": ModelPipeline("m", predict=predict)}, max_inflight=1, timeout_s=0.05)
    async with local_client(app) as c:
        slow = await c.post("/v1/models/m:predict", json={"instances": [[1.0]]})
        assert_error(slow, 504, "timeout")
        slow_v2 = await c.post(
            "/v2/models/m/infer",
            json={"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]},
        )
        assert_error(slow_v2, 504, "timeout")
        # The timed-out requests no longer count against max_inflight=1.
        fast = await c.post("/v1/models/m:predict", json={"instances": [[0.0]]})
        assert fast.status_code == 200 and fast.json() == {"predictions": [0.0]}


# ---------------------------------------------------------------------------- endpoint_tensors


class Rewrites(Transformer):
    def preprocess(self, payload, headers=None):
        return payload


class Declares(Transformer):
    def preprocess(self, payload, headers=None):
        return payload

    def postprocess(self, response, headers=None):
        return response

    def get_input_types(self):
        return [{"name": "text", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self):
        return [{"name": "label", "datatype": "BYTES", "shape": [-1]}]


def declaring(entries: object) -> Transformer:
    """A transformer whose ``get_output_types()`` returns ``entries``."""

    class DeclaresBadly(Transformer):
        def get_output_types(self):
            return entries

    return DeclaresBadly("m")


class DeclarationRaises(Transformer):
    def get_input_types(self):
        raise KeyError("vocab")


def test_endpoint_tensors_without_transformer_are_the_predictors():
    inputs, outputs = endpoint_tensors(None, PREDICTOR_IN, PREDICTOR_OUT)
    assert inputs == PREDICTOR_IN and outputs == PREDICTOR_OUT


def test_endpoint_tensors_base_transformer_keeps_predictor_tensors():
    inputs, outputs = endpoint_tensors(Transformer("m"), PREDICTOR_IN, PREDICTOR_OUT)
    assert inputs == PREDICTOR_IN and outputs == PREDICTOR_OUT


def test_endpoint_tensors_rewriting_preprocess_without_declaration_advertises_no_inputs():
    inputs, outputs = endpoint_tensors(Rewrites("m"), PREDICTOR_IN, PREDICTOR_OUT)
    assert inputs == []
    assert outputs == PREDICTOR_OUT


def test_endpoint_tensors_declarations_win():
    inputs, outputs = endpoint_tensors(Declares("m"), PREDICTOR_IN, PREDICTOR_OUT)
    assert inputs == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert outputs == [{"name": "label", "datatype": "BYTES", "shape": [-1]}]


@pytest.mark.parametrize(
    ("entries", "needle"),
    [
        ([{"name": "label", "datatype": "BYTES"}], "expected {name, datatype, shape}"),
        ([{"name": "label", "datatype": "TEXT", "shape": [-1]}], "unknown datatype 'TEXT'"),
        ([{"name": "label", "datatype": "BYTES", "shape": "-1"}], "shape must be a list of integers"),
        (None, "expected a list"),
    ],
)
def test_endpoint_tensors_bad_declaration_names_the_hook(entries: object, needle: str):
    with pytest.raises(UserCodeError) as info:
        endpoint_tensors(declaring(entries), PREDICTOR_IN, PREDICTOR_OUT)
    assert info.value.hook == "get_output_types"
    assert info.value.message.startswith("get_output_types raised")
    assert needle in info.value.message
    assert info.value.status_code == 500


def test_endpoint_tensors_declaration_that_raises_is_a_user_code_error():
    """Like every other user hook, an exception escaping get_input_types names the hook."""
    with pytest.raises(UserCodeError) as info:
        endpoint_tensors(DeclarationRaises("m"), PREDICTOR_IN, PREDICTOR_OUT)
    assert info.value.hook == "get_input_types"
    assert "KeyError" in info.value.message


async def test_dict_postprocess_response_carries_model_version():
    """A postprocess returning a V2 body as a dict still gets the model's name, id and version."""

    class DictResponse(Transformer):
        def postprocess(self, response, headers=None):
            return {"outputs": [{"name": "y", "datatype": "FP64", "shape": [1], "data": [1.0]}]}

    async def predict(batch):
        return np.zeros(len(batch))

    transformer = DictResponse("m")
    transformer.load()
    pipe = ModelPipeline("m", predict=predict, transformer=transformer, version="7")
    async with local_client(create_app({"m": pipe})) as c:
        r = await c.post(
            "/v2/models/m/versions/7/infer",
            json={"id": "r1", "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model_name"], body["id"]) == ("m", "r1")
    assert body.get("model_version") == "7", body
