"""The V2 binary tensor data extension: codecs, then the data plane end to end (httpx → ASGI)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from pipelines.errors import InvalidInput
from pipelines.protocol import (
    HEADER,
    InferOutput,
    InferRequest,
    InferResponse,
    decode_request,
    decode_tensor,
    encode_tensor,
)
from tests.helpers import ROW, churn_plan, expected_prob, make_client

URL = "/v2/models/churn-classifier/infer"


@pytest.fixture
async def client(churn_artifacts):
    async with await make_client(churn_plan(churn_artifacts)) as c:
        yield c


def binary_body(head: dict, *chunks: bytes) -> tuple[bytes, dict[str, str]]:
    h = json.dumps(head).encode()
    return h + b"".join(chunks), {HEADER: str(len(h)), "content-type": "application/octet-stream"}


def split_response(content: bytes, json_length: int) -> tuple[dict, bytes]:
    return json.loads(content[:json_length]), content[json_length:]


# ---- codecs ---------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT64", "UINT8", "BOOL", "FP16", "INT16"])
def test_fixed_size_round_trip(datatype):
    arr = (
        (np.arange(6) % 2 == 0)
        if datatype == "BOOL"
        else np.arange(6).astype(datatype.lower().replace("fp", "float"))
    )
    raw = encode_tensor(arr, datatype)
    assert len(raw) == arr.size * arr.dtype.itemsize
    back = decode_tensor(raw, datatype, "x")
    assert back.tolist() == arr.tolist()
    back[0] = back[1]  # writable: user hooks may modify inputs in place


def test_bytes_round_trip_is_length_prefixed():
    arr = np.array(["HIGH", "", "ünïcode"], dtype=object)
    raw = encode_tensor(arr, "BYTES")
    assert raw[:8] == struct.pack("<I", 4) + b"HIGH"
    assert decode_tensor(raw, "BYTES", "x").tolist() == [b"HIGH", b"", "ünïcode".encode()]


@pytest.mark.parametrize(
    ("raw", "datatype", "message"),
    [
        (b"\x00" * 7, "FP64", "not a whole number of FP64"),
        (b"\x02\x00", "BYTES", "truncated 4-byte length"),
        (struct.pack("<I", 9) + b"abc", "BYTES", "claims 9 bytes past the end"),
        (b"", "COMPLEX", "unknown datatype"),
    ],
)
def test_bad_tensor_bytes_say_what(raw, datatype, message):
    with pytest.raises(InvalidInput, match=message):
        decode_tensor(raw, datatype, "inputs[0]")


def _head(size: int, **extra) -> dict:
    return {
        "inputs": [
            {
                "name": "x",
                "shape": [2, 2],
                "datatype": "FP32",
                "parameters": {"binary_data_size": size},
                **extra,
            }
        ]
    }


@pytest.mark.parametrize(
    ("head", "tail", "header", "message"),
    [
        (_head(16), b"\x00" * 16, "abc", "expected an integer"),
        (_head(16), b"\x00" * 16, "100000", "outside the body"),
        (_head(16), b"\x00" * 8, None, "overrun"),
        (_head(16), b"\x00" * 20, None, "4 bytes of binary data .* belong to no input"),
        (_head(16, data=[1, 2, 3, 4]), b"\x00" * 16, None, "both data and parameters.binary_data_size"),
        (_head(-1), b"", None, "non-negative integer"),
    ],
)
def test_bad_binary_requests_say_what(head, tail, header, message):
    h = json.dumps(head).encode()
    with pytest.raises(InvalidInput, match=message):
        decode_request(h + tail, header if header is not None else str(len(h)))


def test_binary_and_json_inputs_mix_and_shape_is_checked():
    head = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "INT32", "parameters": {"binary_data_size": 8}},
            {"name": "b", "shape": [2], "datatype": "FP64", "data": [0.5, 1.5]},
            {"name": "c", "shape": [3], "datatype": "INT32", "parameters": {"binary_data_size": 8}},
        ]
    }
    h = json.dumps(head).encode()
    raw = h + np.array([7, 8], "<i4").tobytes() + np.array([1, 2], "<i4").tobytes()
    body = decode_request(raw, str(len(h)))
    assert body["inputs"][0]["data"].tolist() == [7, 8]
    with pytest.raises(InvalidInput, match=r"inputs\[2\].*shape \[3\] needs 3 values, got 2"):
        InferRequest.from_json(body)


def test_response_picks_binary_outputs_per_output_or_request():
    resp = InferResponse(
        "m",
        [
            InferOutput.from_numpy("p", np.array([0.25, 0.75])),
            InferOutput.from_numpy("t", np.array(["LOW", "HIGH"])),
        ],
    )
    req = InferRequest.from_json(
        {
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
            "outputs": [{"name": "p", "parameters": {"binary_data": True}}, {"name": "t"}],
        }
    )
    assert req.wants_binary() and req.binary_output("p") and not req.binary_output("t")
    body, n = resp.to_binary(req.outputs, req.binary_output)
    head, tail = split_response(body, n)
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert "data" not in head["outputs"][0]
    assert head["outputs"][1]["data"] == ["LOW", "HIGH"]
    assert np.frombuffer(tail, "<f8").tolist() == [0.25, 0.75]


# ---- end to end -----------------------------------------------------------------------


async def test_binary_request_and_response_match_json(client, churn_artifacts):
    rows = np.array([list(ROW.values()), [25, 2000, 20.0, 0, 1], [60, 5, 300.0, 9, 40]], dtype="<f8")
    head = {
        "id": "bin-1",
        "inputs": [
            {
                "name": "features",
                "shape": [3, 5],
                "datatype": "FP64",
                "parameters": {"binary_data_size": rows.nbytes},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
    body, headers = binary_body(head, rows.tobytes())
    r = await client.post(URL, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    out, tail = split_response(r.content, int(r.headers[HEADER]))
    assert out["id"] == "bin-1"
    probs_meta, tiers_meta = out["outputs"]
    assert probs_meta["name"] == "churn_probability" and probs_meta["shape"] == [3]
    n = probs_meta["parameters"]["binary_data_size"]
    probs = np.frombuffer(tail[:n], "<f8")
    assert probs == pytest.approx(expected_prob(churn_artifacts, rows.tolist()))
    tiers = decode_tensor(tail[n:], "BYTES", "t")
    assert len(tail) - n == tiers_meta["parameters"]["binary_data_size"]
    assert [t.decode() for t in tiers] == [
        "HIGH" if p > 0.7 else "MEDIUM" if p > 0.3 else "LOW" for p in probs
    ]

    # The same request as plain JSON gives the same numbers.
    plain = {"inputs": [{"name": "features", "shape": [3, 5], "datatype": "FP64", "data": rows.tolist()}]}
    j = (await client.post(URL, json=plain)).json()
    assert j["outputs"][0]["data"] == pytest.approx(probs.tolist())


async def test_binary_request_json_response_by_default(client):
    rows = np.array([list(ROW.values())], dtype="<f4")
    head = {
        "inputs": [
            {
                "name": "features",
                "shape": [1, 5],
                "datatype": "FP32",
                "parameters": {"binary_data_size": rows.nbytes},
            }
        ]
    }
    body, headers = binary_body(head, rows.tobytes())
    r = await client.post(URL, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert len(r.json()["outputs"][0]["data"]) == 1


async def test_bad_binary_request_is_400_and_server_keeps_serving(client):
    head = {
        "inputs": [
            {"name": "features", "shape": [1, 5], "datatype": "FP64", "parameters": {"binary_data_size": 40}}
        ]
    }
    body, headers = binary_body(head, b"\x00" * 24)
    r = await client.post(URL, content=body, headers=headers)
    assert r.status_code == 400
    assert "overrun" in r.json()["error"]
    # binary_data_size without the header: told which header is missing
    r = await client.post(URL, json=head)
    assert r.status_code == 400
    assert "Inference-Header-Content-Length" in r.json()["error"]
    r = await client.post(
        URL,
        json={
            "inputs": [{"name": "features", "shape": [1, 5], "datatype": "FP64", "data": list(ROW.values())}]
        },
    )
    assert r.status_code == 200
