"""V2 (Open Inference Protocol) request and response types, transport-free.

The data plane parses the HTTP body with :func:`parse_json`, turns it into typed objects
(:class:`InferRequest`, or the V1 helpers), and writes replies with :func:`dumps`. No
pydantic on this path: validation is hand-written, strict, and vectorised with numpy.
Every bad-request condition raises :class:`~pipelines.errors.InvalidInput` naming where.

Example::

    req = InferRequest.from_json(parse_json(b'{"inputs": [{"name": "x", "shape": [2, 2],'
                                            b' "datatype": "FP32", "data": [1, 2, 3, 4]}]}'))
    req.as_numpy()            # array([[1., 2.], [3., 4.]], dtype=float32)
    out = InferOutput.from_numpy("y", np.array([0.1, 0.9]))
    dumps(InferResponse("m", [out]).to_json())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import InvalidInput, PredictorError
from pipelines.protocol.binary import encode_tensor
from pipelines.protocol.jsonio import dumps, show_json
from pipelines.protocol.tensors import _Tensor, datatype_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["InferInput", "InferOutput", "InferRequest", "InferResponse"]


class InferInput(_Tensor):
    """One named input tensor of a V2 request; ``data`` is kept as a numpy array of ``shape``.

    Example::

        x = InferInput("x", [2, 2], "FP32", [[1, 2], [3, 4]])   # nested or flat data
        x.as_numpy().dtype                                      # float32
        InferInput.from_numpy("x", np.zeros((3, 4)))            # datatype FP64
    """

    __slots__ = ()
    _kind = "input"

    @classmethod
    def from_numpy(
        cls, name: str, array: NDArray[Any], parameters: dict[str, Any] | None = None
    ) -> InferInput:
        """Wrap an array, inferring the datatype (str/bytes/object arrays → BYTES)."""
        array = np.asarray(array)
        datatype = datatype_of(array.dtype)
        if array.dtype.kind in "US":
            array = array.astype(object)
        return cls._trusted(name, datatype, array, parameters)


class InferOutput(_Tensor):
    """One named output tensor of a V2 response.

    Example::

        InferOutput.from_numpy("proba", model.predict_proba(X)).to_json()
        # {"name": "proba", "shape": [1, 2], "datatype": "FP64", "data": [0.2, 0.8]}
    """

    __slots__ = ()
    _kind = "output"

    @classmethod
    def from_numpy(cls, name: str, array: Any, parameters: dict[str, Any] | None = None) -> InferOutput:
        """Wrap a model result; a dtype with no V2 datatype is a server error (500)."""
        array = np.asarray(array)
        try:
            datatype = datatype_of(array.dtype)
        except InvalidInput as exc:
            raise PredictorError(f"output '{name}': {exc.message}") from None
        if array.dtype.kind in "US":
            array = array.astype(object)
        return cls._trusted(name, datatype, array, parameters)


# --------------------------------------------------------------------------- request / response


def _opt(body: dict[str, Any], key: str, typ: type, what: str) -> Any:
    v = body.get(key)
    if v is not None and type(v) is not typ:
        raise InvalidInput(f"{key}: expected {what}, got {show_json(v)[:60]}")
    return v


class InferRequest:
    """A V2 inference request: named input tensors plus ``id``, ``parameters`` and requested outputs.

    Example::

        req = InferRequest.from_json({"id": "r1", "inputs": [
            {"name": "age", "shape": [2], "datatype": "INT64", "data": [41, 30]},
            {"name": "spend", "shape": [2, 1], "datatype": "FP32", "data": [[120.5], [80]]}]})
        req.as_numpy().shape          # (2, 2): 1-D / [N, 1] inputs are column-stacked
        req.as_dataframe().columns    # ["age", "spend"]
    """

    __slots__ = ("id", "inputs", "model_name", "output_parameters", "outputs", "parameters")

    def __init__(
        self,
        inputs: list[InferInput],
        id: str | None = None,
        parameters: dict[str, Any] | None = None,
        outputs: list[str] | None = None,
        model_name: str | None = None,
        output_parameters: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.inputs = inputs
        self.id = id
        self.parameters = parameters
        self.outputs = outputs
        self.model_name = model_name
        self.output_parameters = output_parameters or {}

    def __repr__(self) -> str:
        return f"InferRequest(id={self.id!r}, inputs={self.inputs!r}, outputs={self.outputs!r})"

    @classmethod
    def from_json(cls, body: Any, model_name: str | None = None) -> InferRequest:
        """Validate a parsed V2 request body strictly; every problem is an ``InvalidInput`` naming where."""
        if type(body) is not dict:
            raise InvalidInput(f"body must be a JSON object, got {show_json(body)[:60]}")
        raw_inputs = body.get("inputs")
        if type(raw_inputs) is not list or not raw_inputs:
            raise InvalidInput('body must have "inputs" (a non-empty list of tensors)')
        inputs = [InferInput._parse(d, f"inputs[{i}]") for i, d in enumerate(raw_inputs)]
        if len(inputs) > 1 and len({x.name for x in inputs}) != len(inputs):
            i = next(i for i, x in enumerate(inputs) if x.name in {y.name for y in inputs[:i]})
            raise InvalidInput(f"inputs[{i}].name: duplicate input name {inputs[i].name!r}")
        req_id = _opt(body, "id", str, "a string")
        params = _opt(body, "parameters", dict, "an object")
        names: list[str] | None = None
        out_params: dict[str, dict[str, Any]] = {}
        raw_outputs = _opt(body, "outputs", list, 'a list of {"name": ...} objects')
        if raw_outputs is not None:
            names = []
            for i, o in enumerate(raw_outputs):
                if type(o) is not dict or type(o.get("name")) is not str:
                    raise InvalidInput(f'outputs[{i}]: expected an object with a string "name"')
                p = o.get("parameters")
                if p is not None:
                    if type(p) is not dict:
                        raise InvalidInput(f"outputs[{i}].parameters: expected an object")
                    out_params[o["name"]] = p
                names.append(o["name"])
        return cls(inputs, req_id, params, names, model_name, out_params)

    def binary_output(self, name: str) -> bool:
        """Whether output ``name`` goes back as raw bytes (binary tensor data extension).

        The output's own ``parameters.binary_data`` decides; else the request's
        ``parameters.binary_data_output``; else JSON.
        """
        own = self.output_parameters.get(name, {}).get("binary_data")
        return own is True if own is not None else self._binary_by_default()

    def wants_binary(self) -> bool:
        """Whether any output may go back as raw bytes."""
        return self._binary_by_default() or any(
            p.get("binary_data") is True for p in self.output_parameters.values()
        )

    def _binary_by_default(self) -> bool:
        return (self.parameters or {}).get("binary_data_output") is True

    def get_input(self, name: str) -> InferInput:
        """The input called ``name``; an unknown name is an ``InvalidInput`` listing the inputs."""
        for x in self.inputs:
            if x.name == name:
                return x
        raise InvalidInput(f"no input named {name!r}; inputs are {[x.name for x in self.inputs]}")

    def _columns(self) -> list[NDArray[Any]]:
        n = self.inputs[0].data.shape[0] if self.inputs[0].data.ndim else None
        cols = []
        for x in self.inputs:
            a = x.data
            if not (a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1)) or a.shape[0] != n:
                raise InvalidInput(
                    f"inputs cannot be combined into one table: each must have shape [N] or [N, 1] with the "
                    f"same N; got {', '.join(f'{y.name} {y.shape}' for y in self.inputs)}"
                )
            cols.append(a.reshape(-1))
        return cols

    def as_numpy(self) -> NDArray[Any]:
        """The single input's array; several [N] / [N, 1] inputs of equal N are column-stacked to [N, k]."""
        if len(self.inputs) == 1:
            return self.inputs[0].data
        return np.column_stack(self._columns())

    def as_dataframe(self) -> pd.DataFrame:
        """A DataFrame: one column per [N] / [N, 1] input (named by it), or ``name_0..`` for an [N, K] input.

        An [N, K] input whose ``parameters.columns`` lists K names uses those names instead.
        """
        import pandas as pd

        if len(self.inputs) == 1 and self.inputs[0].data.ndim == 2:
            x = self.inputs[0]
            k = x.data.shape[1]
            names = (x.parameters or {}).get("columns")
            if names is None:
                names = [x.name] if k == 1 else [f"{x.name}_{i}" for i in range(k)]
            elif type(names) is not list or len(names) != k:
                raise InvalidInput(f"input {x.name!r}: parameters.columns must list {k} names")
            return pd.DataFrame(x.data, columns=names)
        if len(self.inputs) == 1 and self.inputs[0].data.ndim == 1:
            return pd.DataFrame({self.inputs[0].name: self.inputs[0].data})
        return pd.DataFrame(dict(zip([x.name for x in self.inputs], self._columns(), strict=True)))

    def to_json(self) -> dict[str, Any]:
        """The V2 request body (``id``, ``parameters``, ``outputs`` only when set)."""
        d: dict[str, Any] = {}
        if self.id is not None:
            d["id"] = self.id
        if self.parameters:
            d["parameters"] = self.parameters
        d["inputs"] = [x.to_json() for x in self.inputs]
        if self.outputs is not None:
            d["outputs"] = [
                {"name": n, "parameters": self.output_parameters[n]}
                if n in self.output_parameters
                else {"name": n}
                for n in self.outputs
            ]
        return d


class InferResponse:
    """A V2 inference response.

    Example::

        resp = InferResponse("churn", [InferOutput.from_numpy("p", np.array([0.87]))], id="r1")
        resp.to_json(["p"])   # {"model_name": "churn", "id": "r1", "outputs": [{"name": "p", ...}]}
    """

    __slots__ = ("id", "model_name", "model_version", "outputs", "parameters")

    def __init__(
        self,
        model_name: str,
        outputs: list[InferOutput],
        id: str | None = None,
        model_version: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.model_name = model_name
        self.outputs = outputs
        self.id = id
        self.model_version = model_version
        self.parameters = parameters

    def __repr__(self) -> str:
        return f"InferResponse(model_name={self.model_name!r}, id={self.id!r}, outputs={self.outputs!r})"

    def get_output(self, name: str) -> InferOutput:
        """The output called ``name``; an unknown name is an ``InvalidInput`` listing the outputs."""
        for o in self.outputs:
            if o.name == name:
                return o
        raise InvalidInput(f"no output named {name!r}; outputs are {[o.name for o in self.outputs]}")

    def to_json(self, requested: list[str] | None = None) -> dict[str, Any]:
        """The V2 response body, keeping only the ``requested`` outputs (in that order) when given.

        A requested name the model did not produce is an ``InvalidInput`` listing those it did.
        """
        d = self._head()
        d["outputs"] = [o.to_json() for o in self._select(requested)]
        return d

    def to_binary(self, requested: list[str] | None, binary: Callable[[str], bool]) -> tuple[bytes, int]:
        """The body with the outputs ``binary(name)`` picks as raw bytes after the JSON part.

        Returns the whole body and the JSON part's length (the ``Inference-Header-Content-Length``).
        """
        d = self._head()
        outs: list[dict[str, Any]] = []
        chunks: list[bytes] = []
        for o in self._select(requested):
            if not binary(o.name):
                outs.append(o.to_json())
                continue
            raw = encode_tensor(o.data, o.datatype)
            chunks.append(raw)
            params = {**(o.parameters or {}), "binary_data_size": len(raw)}
            outs.append({"name": o.name, "shape": o.shape, "datatype": o.datatype, "parameters": params})
        d["outputs"] = outs
        head = dumps(d)
        return head + b"".join(chunks), len(head)

    def _head(self) -> dict[str, Any]:
        d: dict[str, Any] = {"model_name": self.model_name}
        if self.model_version is not None:
            d["model_version"] = self.model_version
        if self.id is not None:
            d["id"] = self.id
        if self.parameters:
            d["parameters"] = self.parameters
        return d

    def _select(self, requested: list[str] | None) -> list[InferOutput]:
        outputs = self.outputs
        if requested is not None:
            by_name = {o.name: o for o in outputs}
            for n in requested:
                if n not in by_name:
                    raise InvalidInput(
                        f"requested output {n!r} does not exist; available outputs: {list(by_name)}"
                    )
            outputs = [by_name[n] for n in requested]
        return outputs

    @classmethod
    def from_json(cls, body: Any) -> InferResponse:
        """Parse a V2 response body (e.g. from a remote predictor), validating like the request."""
        if type(body) is not dict:
            raise InvalidInput(f"response must be a JSON object, got {show_json(body)[:60]}")
        name = body.get("model_name")
        if type(name) is not str:
            raise InvalidInput('response must have "model_name" (a string)')
        raw = body.get("outputs")
        if type(raw) is not list:
            raise InvalidInput('response must have "outputs" (a list of tensors)')
        outputs = [InferOutput._parse(d, f"outputs[{i}]") for i, d in enumerate(raw)]
        return cls(
            name,
            outputs,
            _opt(body, "id", str, "a string"),
            _opt(body, "model_version", str, "a string"),
            _opt(body, "parameters", dict, "an object"),
        )
