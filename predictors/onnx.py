"""ONNX runtime: ``model.onnx`` run by onnxruntime on CPU.

The model file is ``model.onnx`` in the folder, the one ``*.onnx`` file there, or the one
``model.onnx`` of a Triton-style repository (``<model>/<version>/model.onnx``, the layout
KServe's Triton runtime reads). V2 metadata comes from the graph: its inputs, with their
element types and shapes (a dynamic dimension is ``-1``), and the output served.

Rows reach the graph's inputs by name: a DataFrame (V1 ``{"name": value}`` instances, or
a transformer's) gives each graph input its column (an ``[N, K]`` input may also come as
columns ``name_0 … name_{K-1}``); a single array goes to a single-input graph whole; for
a graph of several 2-D inputs an array is split by columns in the graph's input order (what
V2 requests listing the inputs in that order become). One output is served: the graph's
first, or the one named by arg ``--output``. ``--nthread`` sets onnxruntime's intra-op threads.

Example::

    p = ONNXPredictor("iris", output="probabilities")
    p.load("artifacts/iris")           # artifacts/iris/model.onnx
    p.predict(np.zeros((2, 4)))        # float32, shape (2, classes)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import InvalidInput, StorageError
from predictors._files import need_dir, positive_int
from predictors.base import Predictor, TensorSpec

__all__ = ["ONNXPredictor"]

_TYPES: dict[str, tuple[str, Any]] = {
    "tensor(float)": ("FP32", np.float32),
    "tensor(double)": ("FP64", np.float64),
    "tensor(float16)": ("FP16", np.float16),
    "tensor(int8)": ("INT8", np.int8),
    "tensor(int16)": ("INT16", np.int16),
    "tensor(int32)": ("INT32", np.int32),
    "tensor(int64)": ("INT64", np.int64),
    "tensor(uint8)": ("UINT8", np.uint8),
    "tensor(uint16)": ("UINT16", np.uint16),
    "tensor(uint32)": ("UINT32", np.uint32),
    "tensor(uint64)": ("UINT64", np.uint64),
    "tensor(bool)": ("BOOL", np.bool_),
    "tensor(string)": ("BYTES", object),
}
"""ONNX element types → (V2 datatype, numpy dtype)."""


def find_onnx_file(model_dir: Path) -> Path:
    """``model.onnx``, the one ``*.onnx``, or the one ``*/<version>/model.onnx`` (highest version)."""
    if model_dir.is_file():
        return model_dir
    if (model_dir / "model.onnx").is_file():
        return model_dir / "model.onnx"
    top = sorted(p for p in model_dir.glob("*.onnx") if p.is_file())
    if len(top) == 1:
        return top[0]
    if len(top) > 1:
        raise StorageError(
            f"more than one model file in {model_dir}: {[p.name for p in top]}; "
            "name the one to serve model.onnx"
        )
    nested = sorted(model_dir.glob("*/*/model.onnx"))
    models = sorted({p.parent.parent for p in nested})
    if len(models) == 1:
        versions = [p for p in nested if p.parent.name.isdigit()] or nested
        return max(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1)
    if models:
        raise StorageError(f"{model_dir} holds several Triton models {[m.name for m in models]}; serve one")
    raise StorageError(f"no model file in {model_dir}: the onnx runtime expects model.onnx")


def _dims(shape: list[Any]) -> list[int]:
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


class ONNXPredictor(Predictor):
    """One ``InferenceSession`` (CPU); ``predict`` feeds the graph's inputs and returns one output."""

    platform = "onnxruntime_onnx"

    def __init__(self, name: str, output: str | None = None, nthread: int | str | None = None) -> None:
        super().__init__(name)
        self.output = output
        self.nthread = None if nthread is None else positive_int(nthread, "nthread")
        self.session: Any = None
        self._inputs: list[Any] = []
        self._output: Any = None

    def load(self, model_dir: str | Path | None) -> None:
        import onnxruntime as ort

        path = find_onnx_file(need_dir(model_dir, "onnx"))
        opts = ort.SessionOptions()
        if self.nthread is not None:
            opts.intra_op_num_threads = self.nthread
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's load errors (InvalidProtobuf, Fail, ...) share no base
            raise StorageError(f"onnx: cannot load {path}: {exc}") from exc
        self._inputs = list(self.session.get_inputs())
        for x in self._inputs:
            if x.type not in _TYPES:
                raise StorageError(
                    f"onnx: {path}: input {x.name!r} has type {x.type}, not a tensor V2 can carry"
                )
        outputs = {o.name: o for o in self.session.get_outputs()}
        name = self.output or next(iter(outputs))
        if name not in outputs:
            raise StorageError(f"onnx: {path} has no output {name!r}; its outputs are {list(outputs)}")
        self._output = outputs[name]
        if self._output.type not in _TYPES:
            raise StorageError(
                f"onnx: output {name!r} of {path} is a {self._output.type}, not a tensor; serve another "
                f"(args: --output=NAME, outputs: {list(outputs)}) "
                "or export without it (skl2onnx: zipmap=False)"
            )
        self.ready = True

    # ----------------------------------------------------------------------------- feeding

    def _cast(self, arg: Any, values: Any) -> np.ndarray:
        datatype, dtype = _TYPES[arg.type]
        arr = np.asarray(values)
        rank = len(arg.shape)
        if rank == 1 and arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.reshape(-1)  # V1 scalars per row arrive as (N, 1)
        if rank and arr.ndim != rank:
            raise InvalidInput(
                f"model '{self.name}': input {arg.name!r} needs {rank} dimensions {_dims(arg.shape)}, "
                f"got shape {list(arr.shape)}"
            )
        if datatype == "BYTES":
            flat = [v.decode("utf-8") if isinstance(v, bytes) else v for v in arr.reshape(-1).tolist()]
            if not all(isinstance(v, str) for v in flat):
                raise InvalidInput(f"model '{self.name}': input {arg.name!r} takes strings")
            out = np.empty(len(flat), dtype=object)
            out[:] = flat
            return out.reshape(arr.shape)
        if arr.dtype.kind not in "biuf":
            raise InvalidInput(
                f"model '{self.name}': input {arg.name!r} takes {datatype} numbers, got {arr.dtype}"
            )
        return arr.astype(dtype, copy=False)

    def _feeds(self, batch: Any) -> dict[str, np.ndarray]:
        import pandas as pd

        if isinstance(batch, dict):
            unknown = sorted(set(batch) - {x.name for x in self._inputs})
            if unknown:
                raise InvalidInput(
                    f"model '{self.name}': unknown inputs {unknown}; the graph's are {self._names}"
                )
            missing = [x.name for x in self._inputs if x.name not in batch]
            if missing:
                raise InvalidInput(f"model '{self.name}': missing inputs {missing}")
            return {x.name: self._cast(x, batch[x.name]) for x in self._inputs}
        if isinstance(batch, pd.DataFrame):
            return self._from_columns(batch)
        arr = np.asarray(batch)
        if len(self._inputs) == 1:
            return {self._inputs[0].name: self._cast(self._inputs[0], arr)}
        widths: list[int] = [
            (x.shape[1] if isinstance(x.shape[1], int) else -1)
            if len(x.shape) == 2
            else 1
            if len(x.shape) == 1
            else -1
            for x in self._inputs
        ]
        if arr.ndim != 2 or min(widths) < 0 or sum(widths) != arr.shape[1]:
            raise InvalidInput(
                f"model '{self.name}' has inputs {self._specs_text()}: send each by name (V1 objects "
                f'{{"{self._inputs[0].name}": ...}}, or V2 inputs in this order), got one array of shape '
                f"{list(arr.shape)}"
            )
        feeds, start = {}, 0
        for x, w in zip(self._inputs, widths, strict=True):
            feeds[x.name] = self._cast(x, arr[:, start : start + w] if len(x.shape) == 2 else arr[:, start])
            start += w
        return feeds

    def _from_columns(self, frame: Any) -> dict[str, np.ndarray]:
        feeds, used = {}, set()
        for x in self._inputs:
            if x.name in frame.columns:
                col = np.stack(frame[x.name].to_list()) if frame[x.name].dtype == object else frame[x.name]
                values = np.asarray(col)
                if len(x.shape) == 2 and values.ndim == 1:
                    values = values.reshape(-1, 1)
                feeds[x.name] = self._cast(x, values)
                used.add(x.name)
                continue
            parts = [c for c in frame.columns if isinstance(c, str) and c.startswith(f"{x.name}_")]
            ordered = [f"{x.name}_{i}" for i in range(len(parts))]
            if parts and set(parts) == set(ordered):
                feeds[x.name] = self._cast(x, frame[ordered].to_numpy())
                used.update(ordered)
                continue
            raise InvalidInput(
                f"model '{self.name}': no column for graph input {x.name!r}; "
                f"columns are {list(frame.columns)}"
            )
        extra = [c for c in frame.columns if c not in used]
        if extra:
            raise InvalidInput(
                f"model '{self.name}': unknown columns {extra}; the graph's inputs are {self._names}"
            )
        return feeds

    @property
    def _names(self) -> list[str]:
        return [x.name for x in self._inputs]

    def _specs_text(self) -> str:
        return ", ".join(f"{x.name} {_dims(x.shape)}" for x in self._inputs)

    # ----------------------------------------------------------------------------- serving

    def predict(self, batch: Any) -> np.ndarray:
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

        feeds = self._feeds(batch)
        try:
            (out,) = self.session.run([self._output.name], feeds)
        except InvalidArgument as exc:  # shapes or types the graph refuses
            raise InvalidInput(
                f"model '{self.name}': {str(exc).replace('[ONNXRuntimeError] : 2 : ', '')}"
            ) from exc
        return np.asarray(out)

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec(x.name, _TYPES[x.type][0], _dims(x.shape)) for x in self._inputs]

    def outputs(self) -> list[TensorSpec]:
        o = self._output
        return [] if o is None else [TensorSpec(o.name, _TYPES[o.type][0], _dims(o.shape))]
