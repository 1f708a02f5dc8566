"""The onnx runtime on graphs built into tmp_path (skl2onnx, onnx.helper), against onnxruntime's output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from pipelines.errors import InvalidInput, StorageError
from predictors.onnx import ONNXPredictor
from tests.predictors.serving import as_array, client_for, tensor, v1_predict, v2_infer

RNG = np.random.default_rng(2)
X = RNG.normal(size=(40, 4)).astype(np.float32)
W = np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)


def logistic(path: Path, zipmap: bool = False) -> Path:
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_onnx(model, X[:1], options={"zipmap": zipmap}).SerializeToString())
    return path


def two_inputs(path: Path) -> Path:
    """y = concat(a [N, 2], b [N, 1]) @ W: a graph with two named inputs."""
    graph = helper.make_graph(
        [
            helper.make_node("Concat", ["a", "b"], ["ab"], axis=1),
            helper.make_node("MatMul", ["ab", "W"], ["y"]),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(W, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def ort_run(path: Path, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run([output], feeds)[0]


def test_metadata_from_the_graph_and_output_choice(tmp_path: Path) -> None:
    path = logistic(tmp_path / "model.onnx")
    labels = ONNXPredictor("m")
    labels.load(tmp_path)
    assert labels.inputs() == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert labels.outputs() == [{"name": "label", "datatype": "INT64", "shape": [-1]}]
    np.testing.assert_array_equal(labels.predict(X[:5]), ort_run(path, {"X": X[:5]}, "label"))
    probs = ONNXPredictor("m", output="probabilities", nthread="1")
    probs.load(path)
    assert probs.outputs() == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]
    got = probs.predict(X[:5].astype(np.float64))  # cast to the graph's float
    np.testing.assert_allclose(got, ort_run(path, {"X": X[:5]}, "probabilities"))


def test_named_inputs_map_to_graph_inputs(tmp_path: Path) -> None:
    path = two_inputs(tmp_path / "model.onnx")
    p = ONNXPredictor("m")
    p.load(tmp_path)
    a, b = X[:3, :2], X[:3, 2:3]
    expected = ort_run(path, {"a": a, "b": b}, "y")
    np.testing.assert_allclose(expected, np.concatenate([a, b], axis=1) @ W, rtol=1e-6)
    assert [t["name"] for t in p.inputs()] == ["a", "b"]
    np.testing.assert_allclose(p.predict({"b": b, "a": a}), expected)
    frame = pd.DataFrame({"b": b[:, 0], "a_1": a[:, 1], "a_0": a[:, 0]})
    np.testing.assert_allclose(p.predict(frame), expected)
    np.testing.assert_allclose(p.predict(np.concatenate([a, b], axis=1)), expected)
    with pytest.raises(InvalidInput, match=r"missing inputs \['b'\]"):
        p.predict({"a": a})
    with pytest.raises(InvalidInput, match="no column for graph input 'b'"):
        p.predict(frame.drop(columns="b"))
    with pytest.raises(InvalidInput, match=r"has inputs a \[-1, 2\], b \[-1, 1\]: send each by name"):
        p.predict(np.zeros((2, 4)))


def test_bad_inputs_are_invalid_input(tmp_path: Path) -> None:
    logistic(tmp_path / "model.onnx")
    p = ONNXPredictor("m")
    p.load(tmp_path)
    with pytest.raises(InvalidInput, match="Got invalid dimensions for input: X"):
        p.predict(np.zeros((2, 3)))
    with pytest.raises(InvalidInput, match="input 'X' takes FP32 numbers"):
        p.predict(np.array([["a"] * 4], dtype=object))


def test_file_layouts_and_storage_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="expects model.onnx"):
        ONNXPredictor("m").load(tmp_path)
    triton = tmp_path / "repo"
    logistic(triton / "iris" / "1" / "model.onnx")
    logistic(triton / "iris" / "2" / "model.onnx")
    p = ONNXPredictor("m")
    p.load(triton)  # KServe's Triton layout: the highest version
    assert p.ready
    (tmp_path / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(StorageError, match="cannot load .*model.onnx"):
        ONNXPredictor("m").load(tmp_path)
    zipmap = logistic(tmp_path / "zm" / "model.onnx", zipmap=True)
    with pytest.raises(StorageError, match="output_probability.* is a seq"):
        ONNXPredictor("m", output="output_probability").load(zipmap)
    with pytest.raises(StorageError, match=r"no output 'nope'; its outputs are \['output_label'"):
        ONNXPredictor("m", output="nope").load(zipmap)


async def test_served_through_v1_and_v2(tmp_path: Path) -> None:
    path = logistic(tmp_path / "model.onnx")
    expected = ort_run(path, {"X": X[:4]}, "probabilities")
    spec = {"onnx": {"storageUri": str(tmp_path), "args": ["--output=probabilities"]}}
    async with await client_for(spec) as client:
        np.testing.assert_allclose(await v1_predict(client, X[:4].tolist()), expected, rtol=1e-6)
        (out,) = await v2_infer(client, [tensor("X", X[:4], "FP32")])
        assert (out["name"], out["datatype"], out["shape"]) == ("probabilities", "FP32", [4, 2])
        np.testing.assert_allclose(as_array(out), expected, rtol=1e-6)
        meta = (await client.get("/v2/models/m")).json()
        assert meta["platform"] == "onnxruntime_onnx"
        assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
        assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]


async def test_two_input_graph_through_v1_objects_and_v2_tensors(tmp_path: Path) -> None:
    path = two_inputs(tmp_path / "model.onnx")
    a, b = X[:3, :2], X[:3, 2:3]
    expected = ort_run(path, {"a": a, "b": b}, "y")
    async with await client_for(
        {"model": {"modelFormat": {"name": "onnx"}, "storageUri": str(path)}}
    ) as client:
        rows = [{"a_0": r[0], "a_1": r[1], "b": r[2]} for r in np.concatenate([a, b], axis=1).tolist()]
        np.testing.assert_allclose(await v1_predict(client, rows), expected, rtol=1e-6)
        # V2 named [N, 1] tensors are column-stacked by the data plane, in the request's order
        inputs = [
            tensor("a_0", a[:, 0], "FP32"),
            tensor("a_1", a[:, 1], "FP32"),
            tensor("b", b[:, 0], "FP32"),
        ]
        (out,) = await v2_infer(client, inputs)
        np.testing.assert_allclose(as_array(out), expected, rtol=1e-6)
