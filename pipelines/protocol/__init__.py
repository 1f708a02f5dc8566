"""Transport-free codecs for KServe's V1 and V2 (Open Inference Protocol) REST bodies.

The data plane parses the HTTP body with :func:`parse_json`, turns it into typed objects
(:class:`InferRequest`, or the V1 helpers), and writes replies with :func:`dumps`. No
pydantic on this path: validation is hand-written, strict, and vectorised with numpy.
Every bad-request condition raises :class:`~pipelines.errors.InvalidInput` naming where.

Example::

    >>> req = InferRequest.from_json(parse_json(b'{"inputs": [{"name": "x", "shape": [2, 2],'
    ...                                         b' "datatype": "FP32", "data": [1, 2, 3, 4]}]}'))
    >>> req.as_numpy().tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    >>> dumps(InferResponse("m", [InferOutput.from_numpy("y", [0.5])]).to_json())
    b'{"model_name":"m","outputs":[{"name":"y","shape":[1],"datatype":"FP64","data":[0.5]}]}'
"""

from pipelines.protocol.binary import (
    BINARY_CONTENT_TYPE,
    HEADER,
    BinaryBody,
    decode_request,
    decode_tensor,
    encode_tensor,
)
from pipelines.protocol.jsonio import dumps, flat_list, parse_json, show_json
from pipelines.protocol.tensors import DATATYPES, TensorSpec, datatype_of
from pipelines.protocol.v1 import decode_v1, encode_v1, instances_to_array, v1_instances
from pipelines.protocol.v2 import InferInput, InferOutput, InferRequest, InferResponse

__all__ = [
    "BINARY_CONTENT_TYPE",
    "DATATYPES",
    "HEADER",
    "BinaryBody",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "TensorSpec",
    "datatype_of",
    "decode_request",
    "decode_tensor",
    "decode_v1",
    "dumps",
    "encode_tensor",
    "encode_v1",
    "flat_list",
    "instances_to_array",
    "parse_json",
    "show_json",
    "v1_instances",
]
