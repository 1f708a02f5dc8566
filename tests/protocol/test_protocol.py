"""Unit tests for the V1 / V2 codecs in ``pipelines.protocol`` (no transport, no Ray)."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.errors import InvalidInput, PredictorError
from pipelines.protocol import (
    DATATYPES,
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    datatype_of,
    decode_v1,
    dumps,
    encode_v1,
    instances_to_array,
    parse_json,
    v1_instances,
)


def tensor(name: str = "x", shape: Any = (2,), datatype: str = "FP32", data: Any = (1, 2), **kw: Any) -> dict:
    return {"name": name, "shape": list(shape), "datatype": datatype, "data": list(data), **kw}


def request(*inputs: dict, **kw: Any) -> dict:
    return {"inputs": list(inputs), **kw}


def fails(match: str) -> Any:
    return pytest.raises(InvalidInput, match=re.escape(match))


# --------------------------------------------------------------------------- datatypes

SAMPLES: dict[str, list[Any]] = {
    "BOOL": [True, False, True],
    "INT8": [-128, 0, 127],
    "INT16": [-32768, 1, 32767],
    "INT32": [-(2**31), 2, 2**31 - 1],
    "INT64": [-(2**63), 3, 2**63 - 1],
    "UINT8": [0, 1, 255],
    "UINT16": [0, 1, 65535],
    "UINT32": [0, 1, 2**32 - 1],
    "UINT64": [0, 1, 2**64 - 1],
    "FP16": [0.5, -1.0, 2.0],
    "FP32": [0.25, -1.5, 3.0],
    "FP64": [0.1, -1e300, 3.0],
    "BYTES": ["a", "héllo", ""],
}


def test_every_datatype_is_covered() -> None:
    assert set(SAMPLES) == set(DATATYPES)


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_datatype_round_trip_through_json(datatype: str) -> None:
    body = request(tensor("t", [3], datatype, SAMPLES[datatype]))
    req = InferRequest.from_json(parse_json(dumps(body)))
    arr = req.as_numpy()
    assert arr.dtype == DATATYPES[datatype]
    assert arr.shape == (3,)
    assert arr.tolist() == SAMPLES[datatype]
    assert req.to_json() == body
    out = InferOutput.from_numpy("t", arr)
    assert out.datatype == datatype
    again = InferResponse.from_json(parse_json(dumps(InferResponse("m", [out]).to_json())))
    assert again.outputs[0].as_numpy().tolist() == SAMPLES[datatype]
    assert again.outputs[0].as_numpy().dtype == DATATYPES[datatype]


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float32", "FP32"),
        ("int64", "INT64"),
        ("uint8", "UINT8"),
        ("bool", "BOOL"),
        ("<U3", "BYTES"),
        ("S2", "BYTES"),
        ("O", "BYTES"),
        ("float16", "FP16"),
    ],
)
def test_datatype_of(dtype: str, expected: str) -> None:
    assert datatype_of(np.dtype(dtype)) == expected


def test_datatype_of_unsupported_dtype() -> None:
    with fails("has no V2 datatype"):
        datatype_of(np.dtype("complex64"))
    with pytest.raises(PredictorError, match="output 'z'"):
        InferOutput.from_numpy("z", np.zeros(2, dtype=np.complex64))


def test_bytes_strings_and_bytes_are_json_strings() -> None:
    out = InferOutput.from_numpy("s", np.array([b"ab", b"c\xc3\xa9"]))
    assert out.datatype == "BYTES"
    assert out.to_json()["data"] == ["ab", "cé"]
    str_out = InferOutput.from_numpy("s", np.array(["x", "yz"]))
    assert str_out.as_numpy().dtype == object
    assert json.loads(dumps(str_out.to_json()))["data"] == ["x", "yz"]


def test_bytes_rejects_non_strings() -> None:
    with fails("inputs[0] ('s'): data[1] = 3 is not a valid BYTES value (expected a string)"):
        InferRequest.from_json(request(tensor("s", [2], "BYTES", ["a", 3])))


# --------------------------------------------------------------------------- V2 request validation


def test_nested_data_is_flattened() -> None:
    req = InferRequest.from_json(request(tensor("x", [2, 3], "INT32", [[1, 2, 3], [4, 5, 6]])))
    np.testing.assert_array_equal(req.as_numpy(), [[1, 2, 3], [4, 5, 6]])
    ragged = InferRequest.from_json(request(tensor("x", [2, 3], "FP64", [[1, 2], [3, 4, 5, 6]])))
    assert ragged.as_numpy().shape == (2, 3)
    strings = InferRequest.from_json(request(tensor("s", [2, 1], "BYTES", [["a"], ["b"]])))
    assert strings.as_numpy().tolist() == [["a"], ["b"]]
    with fails("inputs[0] ('x'): data mixes nested lists and values"):
        InferRequest.from_json(request(tensor("x", [3], "FP32", [[1, 2], 3])))


def test_shape_mismatch_names_the_input() -> None:
    body = request(tensor("input-0", [2, 5], "FP32", range(9)))
    with fails("inputs[0] ('input-0'): shape [2, 5] needs 10 values, got 9"):
        InferRequest.from_json(body)


def test_unknown_datatype() -> None:
    body = request(tensor("a"), tensor("b", datatype="FP99"))
    with fails('inputs[1].datatype: unknown datatype "FP99"; expected one of BOOL, INT8'):
        InferRequest.from_json(body)
    with fails("unknown datatype 'FP99'"):
        InferInput("x", [1], "FP99", [1])


@pytest.mark.parametrize("field", ["name", "shape", "datatype", "data"])
def test_missing_field_is_named(field: str) -> None:
    t = tensor()
    del t[field]
    with fails(f'inputs[0]: missing required field "{field}"'):
        InferRequest.from_json(request(t))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "body must be a JSON object"),
        ({}, 'body must have "inputs"'),
        ({"inputs": []}, 'body must have "inputs"'),
        ({"inputs": {"name": "x"}}, 'body must have "inputs"'),
        ({"inputs": ["x"]}, "inputs[0]: expected an object"),
        (request(tensor(name="")), "inputs[0].name: expected a non-empty string"),
        (request(tensor(name=3)), "inputs[0].name: expected a non-empty string, got 3"),
        (request(tensor(shape=[2, -1])), "inputs[0].shape: expected a list of non-negative integers"),
        (request(tensor(shape=[2.0])), "inputs[0].shape: expected a list of non-negative integers"),
        (request({**tensor(), "shape": "2"}), "inputs[0].shape"),
        (request({**tensor(), "data": "12"}), "inputs[0].data: expected a list"),
        (request(tensor(parameters=[1])), "inputs[0].parameters: expected an object"),
        (request(tensor(), tensor()), "inputs[1].name: duplicate input name 'x'"),
        (request(tensor(), id=5), "id: expected a string, got 5"),
        (request(tensor(), parameters="p"), "parameters: expected an object"),
        (request(tensor(), outputs={"name": "y"}), "outputs: expected a list"),
        (request(tensor(), outputs=[{"nom": "y"}]), 'outputs[0]: expected an object with a string "name"'),
        (request(tensor(), outputs=[{"name": "y", "parameters": 1}]), "outputs[0].parameters"),
    ],
)
def test_bad_request_bodies(body: Any, message: str) -> None:
    with fails(message):
        InferRequest.from_json(body)


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("FP32", [1, "abc"], 'data[1] = "abc" is not a valid FP32 value (expected a number)'),
        ("FP32", ["1.5"], 'data[0] = "1.5" is not a valid FP32 value'),
        ("FP32", [1.0, None], "data[1] = null is not a valid FP32 value"),
        ("FP32", [True, False], "data[0] = true is not a valid FP32 value"),
        ("INT32", [1, 1.5], "data[1] = 1.5 is not a valid INT32 value (expected an integer)"),
        ("INT32", [2**31], "data[0] = 2147483648 is not a valid INT32 value (out of range"),
        ("UINT8", [-1, 3], "data[0] = -1 is not a valid UINT8 value (out of range [0, 255])"),
        ("INT64", [-1, 2**63], "data[1] = 9223372036854775808 is not a valid INT64 value (out of range"),
        ("UINT64", [2**64], "data[0] = 18446744073709551616 is not a valid UINT64 value (out of range"),
        ("INT8", [True, False], "data[0] = true is not a valid INT8 value (expected a number)"),
        ("BOOL", [True, 1], "data[1] = 1 is not a valid BOOL value (expected true or false)"),
        ("BOOL", ["true", False], 'data[0] = "true" is not a valid BOOL value'),
        ("FP64", [[1], [{}]], "data[1] = {} is not a valid FP64 value"),
    ],
)
def test_values_that_do_not_fit_the_datatype(datatype: str, data: list[Any], message: str) -> None:
    body = request(tensor("v", [len(data)], datatype, data))
    with fails(f"inputs[0] ('v'): {message}"):
        InferRequest.from_json(body)


def test_integral_floats_are_accepted_for_int_types() -> None:
    req = InferRequest.from_json(request(tensor("i", [3], "INT64", [1.0, 2, -3.0])))
    assert req.as_numpy().dtype == np.int64
    assert req.as_numpy().tolist() == [1, 2, -3]


def test_empty_and_scalar_shapes() -> None:
    empty = InferRequest.from_json(request(tensor("e", [0, 3], "FP32", [])))
    assert empty.as_numpy().shape == (0, 3)
    scalar = InferRequest.from_json(request(tensor("s", [], "INT8", [7])))
    assert scalar.as_numpy().shape == ()
    assert scalar.to_json()["inputs"][0]["data"] == [7]


def test_id_echo_and_parameters_pass_through() -> None:
    params = {"content_type": "pd", "nested": {"k": [1, 2]}}
    body = request(tensor(parameters={"columns": ["a", "b"]}), id="req-7", parameters=params)
    req = InferRequest.from_json(body)
    assert req.id == "req-7"
    assert req.parameters == params
    assert req.inputs[0].parameters == {"columns": ["a", "b"]}
    assert req.to_json() == body
    out = InferResponse("m", [InferOutput.from_numpy("y", np.ones(2))], id=req.id, parameters={"t": 1})
    reply = out.to_json()
    assert reply["id"] == "req-7"
    assert reply["parameters"] == {"t": 1}
    assert "model_version" not in reply


def test_response_omits_unset_fields_and_keeps_model_version() -> None:
    resp = InferResponse("m", [InferOutput.from_numpy("y", np.array([[1, 2]], dtype=np.int32))])
    assert resp.to_json() == {
        "model_name": "m",
        "outputs": [{"name": "y", "shape": [1, 2], "datatype": "INT32", "data": [1, 2]}],
    }
    assert InferResponse("m", [], model_version="3").to_json()["model_version"] == "3"


def test_requested_outputs() -> None:
    body = request(tensor(), outputs=[{"name": "b"}, {"name": "a", "parameters": {"binary_data": False}}])
    req = InferRequest.from_json(body)
    assert req.outputs == ["b", "a"]
    assert req.output_parameters == {"a": {"binary_data": False}}
    assert req.to_json()["outputs"] == body["outputs"]
    outs = [InferOutput.from_numpy(n, np.arange(2)) for n in ("a", "b", "c")]
    resp = InferResponse("m", outs)
    assert [o["name"] for o in resp.to_json(req.outputs)["outputs"]] == ["b", "a"]
    assert [o["name"] for o in resp.to_json()["outputs"]] == ["a", "b", "c"]
    assert InferRequest.from_json(request(tensor())).outputs is None


def test_unknown_requested_output_lists_available() -> None:
    resp = InferResponse("m", [InferOutput.from_numpy("proba", np.ones(2))])
    with fails("requested output 'label' does not exist; available outputs: ['proba']"):
        resp.to_json(["label"])


def test_get_input_and_get_output() -> None:
    req = InferRequest.from_json(request(tensor("a"), tensor("b")))
    assert req.get_input("b").name == "b"
    with fails("no input named 'c'; inputs are ['a', 'b']"):
        req.get_input("c")
    resp = InferResponse("m", [InferOutput.from_numpy("y", np.ones(1))])
    assert resp.get_output("y").shape == [1]
    with fails("no output named 'z'"):
        resp.get_output("z")


def test_as_numpy_column_stacks_1d_inputs() -> None:
    req = InferRequest.from_json(
        request(tensor("age", [2], "INT64", [41, 30]), tensor("spend", [2, 1], "FP32", [[120.5], [80]]))
    )
    np.testing.assert_array_equal(req.as_numpy(), [[41, 120.5], [30, 80]])
    bad = InferRequest.from_json(request(tensor("a", [2, 2], "FP32", [1, 2, 3, 4]), tensor("b")))
    with fails("inputs cannot be combined into one table"):
        bad.as_numpy()
    uneven = InferRequest.from_json(request(tensor("a", [3], "FP32", [1, 2, 3]), tensor("b")))
    with fails("same N"):
        uneven.as_numpy()


def test_as_dataframe() -> None:
    req = InferRequest.from_json(
        request(tensor("age", [2], "INT64", [41, 30]), tensor("tier", [2, 1], "BYTES", ["a", "b"]))
    )
    df = req.as_dataframe()
    assert list(df.columns) == ["age", "tier"]
    assert df["age"].tolist() == [41, 30]
    assert df["tier"].tolist() == ["a", "b"]
    wide = InferRequest.from_json(request(tensor("f", [2, 3], "FP64", range(6))))
    assert list(wide.as_dataframe().columns) == ["f_0", "f_1", "f_2"]
    named = InferRequest.from_json(
        request(tensor("f", [1, 2], "FP64", [1, 2], parameters={"columns": ["u", "v"]}))
    )
    assert named.as_dataframe().to_dict(orient="records") == [{"u": 1.0, "v": 2.0}]
    with fails("parameters.columns must list 2 names"):
        InferRequest.from_json(request(tensor("f", [1, 2], parameters={"columns": ["u"]}))).as_dataframe()
    single = InferRequest.from_json(request(tensor("x", [2], "FP32", [1, 2])))
    assert list(single.as_dataframe().columns) == ["x"]


def test_infer_input_constructor_and_from_numpy() -> None:
    x = InferInput("x", [2, 2], "FP32", [[1, 2], [3, 4]])
    assert x.as_numpy().dtype == np.float32
    assert x.as_numpy().shape == (2, 2)
    with fails("input 'x': shape [3] needs 3 values, got 2"):
        InferInput("x", [3], "FP32", [1, 2])
    y = InferInput.from_numpy("y", np.zeros((3, 4)))
    assert (y.datatype, y.shape) == ("FP64", [3, 4])
    s = InferInput.from_numpy("s", np.array(["a", "b"]))
    assert s.datatype == "BYTES"
    assert s.as_numpy().dtype == object
    assert InferInput("a", [2], "INT32", np.array([1.0, 2.0])).as_numpy().dtype == np.int32


def test_response_from_json_validates() -> None:
    with fails('response must have "model_name"'):
        InferResponse.from_json({"outputs": []})
    with fails('response must have "outputs"'):
        InferResponse.from_json({"model_name": "m"})
    with fails("outputs[0] ('y'): shape [2] needs 2 values, got 1"):
        InferResponse.from_json({"model_name": "m", "outputs": [tensor("y", [2], "FP32", [1])]})
    resp = InferResponse.from_json(
        {"model_name": "m", "model_version": "1", "id": "r", "outputs": [tensor("y", [1, 2], "FP32", [1, 2])]}
    )
    assert (resp.model_name, resp.model_version, resp.id) == ("m", "1", "r")
    assert resp.outputs[0].as_numpy().shape == (1, 2)


# --------------------------------------------------------------------------- V1


def test_decode_v1() -> None:
    body = {"instances": [[1, 2]]}
    assert decode_v1(body) is body
    assert v1_instances(body) == [[1, 2]]
    assert v1_instances(decode_v1({"inputs": [[3]]})) == [[3]]
    with fails('body must have "instances" (a list)'):
        decode_v1({"instance": [[1]]})
    with fails('"instances" must be a list, got dict'):
        decode_v1({"instances": {"a": 1}})
    with fails('"instances" is empty'):
        decode_v1({"instances": []})
    with fails("body must be a JSON object"):
        decode_v1([[1, 2]])


def test_instances_to_array_numbers_and_strings() -> None:
    arr = instances_to_array([[1, 2.5], [3, 4]])
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.float64
    assert arr.shape == (2, 2)
    assert instances_to_array([1, 2, 3]).tolist() == [1, 2, 3]
    mixed = instances_to_array([["a", 1], ["b", 2]])
    assert mixed.dtype == object
    assert mixed.tolist() == [["a", 1], ["b", 2]]
    assert instances_to_array(["great movie", "bad"]).tolist() == ["great movie", "bad"]


def test_instances_list_of_dicts_becomes_dataframe() -> None:
    rows = [{"age": 41, "tier": "HIGH", "spend": 120.5}, {"spend": 3, "age": 30, "tier": "LOW"}]
    df = instances_to_array(rows)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["age", "tier", "spend"]
    assert df["age"].tolist() == [41, 30]
    assert df["spend"].dtype == np.float64
    assert df["tier"].tolist() == ["HIGH", "LOW"]


def test_instances_dict_rows_must_share_keys() -> None:
    with fails("instances[1] is missing key 'tier'"):
        instances_to_array([{"age": 1, "tier": "a"}, {"age": 2}])
    with fails("instances[1] has key 'x', which instances[0] lacks"):
        instances_to_array([{"age": 1}, {"age": 2, "x": 3}])
    with fails("instances[1] is a list, but instances[0] is an object"):
        instances_to_array([{"age": 1}, [2]])


def test_ragged_instances() -> None:
    rows = [[1, 2, 3, 4, 5]] * 3 + [[1, 2, 3, 4]] + [[1, 2, 3, 4, 5]]
    with fails("instances[3] has 4 values, others have 5"):
        instances_to_array(rows)
    with fails("instances[1] is a value, but the others are lists"):
        instances_to_array([[1, 2], 3, [4, 5]])
    with fails("instances[1][1] has 1 values, others have 2"):
        instances_to_array([[[1], [1, 2]], [[1], [3]], [[2], [5, 6]]])
    with fails('"instances" must be a non-empty list'):
        instances_to_array([])


def test_encode_v1() -> None:
    assert encode_v1(np.array([0.1, 0.9])) == {"predictions": [0.1, 0.9]}
    assert encode_v1([1, 2]) == {"predictions": [1, 2]}
    assert encode_v1((1, 2)) == {"predictions": [1, 2]}
    df = pd.DataFrame({"churn_probability": [0.87], "risk_tier": ["HIGH"]})
    assert encode_v1(df) == {"predictions": [{"churn_probability": 0.87, "risk_tier": "HIGH"}]}
    assert encode_v1(pd.Series([1, 0])) == {"predictions": [1, 0]}
    assert json.loads(dumps(encode_v1(df))) == encode_v1(df)
    with pytest.raises(PredictorError):
        encode_v1(3.5)


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "malformed JSON: empty body"),
        (b"  \n", "malformed JSON: empty body"),
        (b'{"a": 1,}', "malformed JSON: "),
        (b'{"a": [1, 2}', "line 1 column"),
        (b"\xff\xfe{", "malformed JSON: "),
    ],
)
def test_malformed_json(raw: bytes, message: str) -> None:
    with fails(message):
        parse_json(raw)


def test_parse_json_reports_line_and_column() -> None:
    with pytest.raises(InvalidInput, match=r"line 2 column \d+"):
        parse_json(b'{"a": 1,\n "b": }')
    assert parse_json('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


def test_dumps_is_numpy_safe() -> None:
    obj = {
        "f32": np.float32(0.5),
        "i64": np.int64(7),
        "b": np.bool_(True),
        "arr": np.arange(4).reshape(2, 2),
        "f16": np.array([1.5], dtype=np.float16),
        "obj": np.array(["a", b"b"], dtype=object),
        "raw": b"xy",
        "tuple": (1, 2),
        "df": pd.DataFrame({"a": [1]}),
    }
    out = dumps(obj)
    assert isinstance(out, bytes)
    assert json.loads(out) == {
        "f32": 0.5,
        "i64": 7,
        "b": True,
        "arr": [[0, 1], [2, 3]],
        "f16": [1.5],
        "obj": ["a", "b"],
        "raw": "xy",
        "tuple": [1, 2],
        "df": [{"a": 1}],
    }
    assert dumps({"s": "é"}) == '{"s":"é"}'.encode()
    with pytest.raises(TypeError):
        dumps({"x": object()})
