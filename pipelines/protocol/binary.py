"""The V2 binary tensor data extension (KServe / Triton): raw tensor bytes after a JSON header.

A request with the ``Inference-Header-Content-Length: N`` header carries N bytes of JSON
first; inputs with ``"parameters": {"binary_data_size": S}`` have no ``"data"`` and take the
next S bytes, in input order. Fixed-size types are little-endian, row-major; a BYTES
element is a 4-byte little-endian length followed by its bytes. A response sends an output
as binary when the request's output has ``"binary_data": true`` (or the request has
``"parameters": {"binary_data_output": true}``), and says how long its JSON part is with
the same header.

Example::

    head = b'{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}}]}'
    body = head + np.arange(4, dtype="<f4").tobytes()
    decode_request(body, str(len(head)))["inputs"][0]["data"]   # array([0., 1., 2., 3.], dtype=float32)
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import InvalidInput
from pipelines.protocol.jsonio import parse_json, show_json
from pipelines.protocol.tensors import DATATYPES

__all__ = ["HEADER", "BINARY_CONTENT_TYPE", "BinaryBody", "decode_request", "decode_tensor", "encode_tensor"]

HEADER = "inference-header-content-length"
"""The HTTP header (case-insensitive) giving the byte length of the JSON part."""

BINARY_CONTENT_TYPE = "application/octet-stream"

_LEN = struct.Struct("<I")


class BinaryBody(NamedTuple):
    """A response body whose first ``json_length`` bytes are JSON and the rest raw tensors."""

    body: bytes
    json_length: int


def _header_length(value: str, body_size: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"{HEADER}: expected an integer, got {value[:40]!r}") from None
    if not 0 < n <= body_size:
        raise InvalidInput(f"{HEADER}: {n} is outside the body's {body_size} bytes")
    return n


def decode_tensor(chunk: bytes | memoryview, datatype: Any, where: str) -> NDArray[Any]:
    """The flat array in ``chunk`` (little-endian ``datatype``; BYTES length-prefixed)."""
    if datatype not in DATATYPES:
        raise InvalidInput(f"{where}.datatype: unknown datatype {show_json(datatype)}")
    if datatype == "BYTES":
        items: list[bytes] = []
        view, pos = memoryview(chunk), 0
        while pos < len(view):
            if pos + 4 > len(view):
                raise InvalidInput(f"{where}: BYTES element {len(items)} has a truncated 4-byte length")
            (n,) = _LEN.unpack_from(view, pos)
            if pos + 4 + n > len(view):
                raise InvalidInput(f"{where}: BYTES element {len(items)} claims {n} bytes past the end")
            items.append(bytes(view[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        return arr
    dtype = DATATYPES[datatype].newbyteorder("<")
    if len(chunk) % dtype.itemsize:
        raise InvalidInput(
            f"{where}: {len(chunk)} bytes is not a whole number of {datatype} values ({dtype.itemsize} bytes)"
        )
    # A copy: the request buffer is read-only and user hooks may write in place.
    return np.frombuffer(chunk, dtype=dtype).astype(DATATYPES[datatype], copy=True)


def encode_tensor(arr: NDArray[Any], datatype: str) -> bytes:
    """``arr`` as the extension's raw bytes (row-major, little-endian; BYTES length-prefixed)."""
    if datatype == "BYTES":
        # Labels repeat: each distinct str/bytes value is encoded once. (Other objects are
        # encoded every time: they may be unhashable, and 1 == 1.0 == True would collide.)
        seen: dict[str | bytes, bytes] = {}
        parts = []
        for v in arr.reshape(-1).tolist():
            if type(v) is str or type(v) is bytes:
                e = seen.get(v)
                if e is None:
                    e = seen[v] = _element(v)
            else:
                e = _element(v)
            parts.append(e)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=DATATYPES[datatype].newbyteorder("<")).tobytes()


def _element(v: Any) -> bytes:
    b = v if type(v) is bytes else str(v).encode("utf-8")
    return _LEN.pack(len(b)) + b


def decode_request(raw: bytes, header_length: str) -> dict[str, Any]:
    """The V2 request body of a binary-extension request, each binary input's ``data`` decoded.

    Every inconsistency (bad header value, sizes that overrun or leave bytes unclaimed,
    an input with both ``data`` and ``binary_data_size``) is an ``InvalidInput`` saying where.
    """
    n = _header_length(header_length, len(raw))
    body = parse_json(raw[:n])
    if type(body) is not dict:
        raise InvalidInput(f"body must be a JSON object, got {show_json(body)[:60]}")
    blob = memoryview(raw)[n:]
    offset = 0
    inputs = body.get("inputs")
    for i, inp in enumerate(inputs if type(inputs) is list else []):
        params = inp.get("parameters") if type(inp) is dict else None
        size = params.get("binary_data_size") if type(params) is dict else None
        if size is None:
            continue
        where = f"inputs[{i}]"
        if type(size) is not int or size < 0:
            raise InvalidInput(f"{where}.parameters.binary_data_size: expected a non-negative integer")
        if "data" in inp:
            raise InvalidInput(f"{where}: has both data and parameters.binary_data_size")
        if offset + size > len(blob):
            raise InvalidInput(
                f"{where}.parameters.binary_data_size: {size} bytes at offset {offset} overrun the "
                f"{len(blob)} bytes of binary data"
            )
        inp["data"] = decode_tensor(blob[offset : offset + size], inp.get("datatype"), where)
        offset += size
    if offset != len(blob):
        raise InvalidInput(
            f"{len(blob) - offset} bytes of binary data after the JSON header belong to no input "
            "(set parameters.binary_data_size on each binary input)"
        )
    return body
