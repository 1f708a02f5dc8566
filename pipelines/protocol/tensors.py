"""V2 tensor internals: datatype tables and strict coercion of ``data`` to numpy arrays.

:class:`_Tensor` is the shared base of :class:`~pipelines.protocol.InferInput` and
:class:`~pipelines.protocol.InferOutput`; import the public names from :mod:`pipelines.protocol`.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import InvalidInput
from pipelines.protocol.jsonio import flat_list, show_json

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {dt: name for name, dt in DATATYPES.items() if name != "BYTES"}
_KNOWN = ", ".join(DATATYPES)


def datatype_of(dtype: np.dtype[Any] | type) -> str:
    """The V2 datatype name for a numpy dtype; str, bytes and object arrays are ``BYTES``.

    Example::

        datatype_of(np.dtype("float32"))  # "FP32"
    """
    dt = np.dtype(dtype)
    if dt.kind in "OUS":
        return "BYTES"
    try:
        return _BY_DTYPE[dt]
    except KeyError:
        raise InvalidInput(f"numpy dtype {dt} has no V2 datatype; expected one of {_KNOWN}") from None


class TensorSpec(dict):  # type: ignore[type-arg]
    """One V2 metadata entry: ``{"name", "datatype", "shape"}`` (``-1`` = any size).

    >>> TensorSpec("features", "FP64", [-1, 5])
    {'name': 'features', 'datatype': 'FP64', 'shape': [-1, 5]}
    """

    def __init__(self, name: str, datatype: str, shape: list[int]) -> None:
        if datatype not in DATATYPES:
            raise ValueError(f"tensor {name!r}: unknown datatype {datatype!r}; expected one of {_KNOWN}")
        super().__init__(name=name, datatype=datatype, shape=[int(d) for d in shape])

    @classmethod
    def of(cls, entry: Any, where: str) -> TensorSpec:
        """A declared entry (a dict with name, datatype, shape) checked; ``ValueError`` naming ``where``."""
        if not isinstance(entry, dict) or not {"name", "datatype", "shape"} <= set(entry):
            raise ValueError(f"{where}: expected {{name, datatype, shape}}, got {entry!r}")
        shape = entry["shape"]
        if not isinstance(shape, list | tuple) or not all(type(d) is int and d >= -1 for d in shape):
            raise ValueError(f"{where}: shape must be a list of integers (-1 = any size), got {shape!r}")
        return cls(str(entry["name"]), str(entry["datatype"]), list(shape))


# --------------------------------------------------------------------------- coercion


def _flatten(data: list[Any], where: str) -> list[Any]:
    """Flatten nested lists level by level; a level mixing lists and values is an error."""
    while data and type(data[0]) is list:
        if not all(type(x) is list for x in data):
            raise InvalidInput(f"{where}: data mixes nested lists and values at the same depth")
        data = [v for row in data for v in row]
    if any(type(x) is list for x in data):
        raise InvalidInput(f"{where}: data mixes nested lists and values at the same depth")
    return data


def _why_bad(v: Any, datatype: str) -> str | None:
    if datatype == "BOOL":
        return None if type(v) is bool else "expected true or false"
    if datatype == "BYTES":
        return None if isinstance(v, (str, bytes)) else "expected a string"
    if type(v) is bool or not isinstance(v, (int, float, np.integer, np.floating)):
        return "expected a number"
    if datatype[0] in "IU":
        if isinstance(v, (float, np.floating)) and not float(v).is_integer():
            return "expected an integer"
        info = np.iinfo(DATATYPES[datatype])
        if not info.min <= int(v) <= info.max:
            return f"out of range [{info.min}, {info.max}]"
    return None


def _bad_value(data: list[Any], datatype: str, where: str) -> InvalidInput:
    flat = _flatten(data, where)
    for i, v in enumerate(flat):
        reason = _why_bad(v, datatype)
        if reason:
            return InvalidInput(
                f"{where}: data[{i}] = {show_json(v)} is not a valid {datatype} value ({reason})"
            )
    return InvalidInput(f"{where}: data is not valid {datatype} data")


def _coerce(data: Any, shape: list[int], datatype: str, where: str) -> NDArray[Any]:
    """``data`` (flat or nested list, or array) → array of ``datatype`` shaped ``shape``."""
    dtype = DATATYPES[datatype]
    if isinstance(data, np.ndarray):
        arr = data if data.dtype == dtype else data.astype(dtype)
    elif datatype == "BYTES":
        flat = _flatten(data, where)
        for v in flat:
            if type(v) is not str and type(v) is not bytes:
                raise _bad_value(flat, datatype, where)
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, OverflowError, TypeError):  # ragged nesting: flatten by hand
            data = _flatten(data, where)
            arr = np.asarray(data)
        kind = arr.dtype.kind
        if datatype == "BOOL":
            ok = kind == "b"
        elif datatype[0] == "F":
            ok = kind in "iuf"
        else:
            ok = kind in "iu" or (kind == "f" and bool(np.array_equal(arr, np.trunc(arr))))
            if ok and arr.size:
                info = np.iinfo(dtype)
                ok = arr.min() >= info.min and arr.max() <= info.max
            if ok and kind == "f":  # floats lose precision past 2**53: convert from the source values
                try:
                    arr = np.asarray(data, dtype=dtype)
                except (ValueError, OverflowError, TypeError):
                    ok = False
        if not ok:
            raise _bad_value(data, datatype, where)
        arr = arr.astype(dtype, copy=False)
    n = math.prod(shape)
    if arr.size != n:
        raise InvalidInput(f"{where}: shape {list(shape)} needs {n} values, got {arr.size}")
    return arr.reshape(shape)


# --------------------------------------------------------------------------- tensors


class _Tensor:
    __slots__ = ("data", "datatype", "name", "parameters", "shape")
    _kind = "tensor"

    def __init__(
        self,
        name: str,
        shape: list[int],
        datatype: str,
        data: Any,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        if datatype not in DATATYPES:
            raise InvalidInput(
                f"{self._kind} '{name}': unknown datatype {datatype!r}; expected one of {_KNOWN}"
            )
        self.name = name
        self.shape = list(shape)
        self.datatype = datatype
        self.data: NDArray[Any] = _coerce(data, self.shape, datatype, f"{self._kind} '{name}'")
        self.parameters = parameters

    @classmethod
    def _trusted(cls, name: str, datatype: str, arr: NDArray[Any], parameters: dict[str, Any] | None) -> Self:
        self = cls.__new__(cls)
        self.name, self.shape, self.datatype, self.data = name, list(arr.shape), datatype, arr
        self.parameters = parameters
        return self

    def as_numpy(self) -> NDArray[Any]:
        """The tensor as a numpy array of its shape (no copy). BYTES → object array of str/bytes."""
        return self.data

    def to_json(self) -> dict[str, Any]:
        """``{"name", "shape", "datatype", "data" (flat list), "parameters"?}``."""
        d: dict[str, Any] = {
            "name": self.name,
            "shape": self.shape,
            "datatype": self.datatype,
            "data": flat_list(self.data),
        }
        if self.parameters:
            d["parameters"] = self.parameters
        return d

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, shape={self.shape}, datatype={self.datatype!r})"

    @classmethod
    def _parse(cls, d: Any, where: str) -> Self:
        if not isinstance(d, dict):
            raise InvalidInput(f"{where}: expected an object, got {show_json(d)[:60]}")
        for key in ("name", "shape", "datatype", "data"):
            if key not in d:
                if key == "data" and "binary_data_size" in (d.get("parameters") or {}):
                    raise InvalidInput(
                        f"{where}: parameters.binary_data_size is set but the request has no "
                        "Inference-Header-Content-Length header (binary tensor data extension)"
                    )
                raise InvalidInput(f'{where}: missing required field "{key}"')
        name, shape, datatype, data = d["name"], d["shape"], d["datatype"], d["data"]
        if type(name) is not str or not name:
            raise InvalidInput(f"{where}.name: expected a non-empty string, got {show_json(name)}")
        if type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
            raise InvalidInput(
                f"{where}.shape: expected a list of non-negative integers, got {show_json(shape)}"
            )
        if datatype not in DATATYPES:
            raise InvalidInput(
                f"{where}.datatype: unknown datatype {show_json(datatype)}; expected one of {_KNOWN}"
            )
        if type(data) is not list and not isinstance(data, np.ndarray):  # arrays: binary extension
            raise InvalidInput(f"{where}.data: expected a list, got {show_json(data)[:60]}")
        params = d.get("parameters")
        if params is not None and type(params) is not dict:
            raise InvalidInput(f"{where}.parameters: expected an object, got {show_json(params)[:60]}")
        arr = _coerce(data, shape, datatype, f"{where} ({name!r})")
        return cls._trusted(name, datatype, arr, params)
