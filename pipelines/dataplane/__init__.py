"""The data plane: what happens to a request, whatever the transport.

:class:`ModelPipeline` runs transformer.preprocess → predict → transformer.postprocess (and
explain) for V1 and V2; :mod:`~pipelines.dataplane.loading` builds the pieces inside a
replica; :func:`create_app` (``rest.py``) is the Starlette HTTP adapter over pipelines.
"""

from pipelines.dataplane.loading import (
    check_transformer,
    construct,
    load_predictor,
    load_transformer,
    predictor_metadata,
    unknown_args,
)
from pipelines.dataplane.pipeline import (
    REQUEST_INFO,
    TAG_HEADER,
    Description,
    ModelPipeline,
    call_hook,
    endpoint_tensors,
    overrides,
    to_batch,
)
from pipelines.dataplane.rest import SERVER_NAME, create_app, server_version

__all__ = [
    "REQUEST_INFO",
    "SERVER_NAME",
    "TAG_HEADER",
    "Description",
    "ModelPipeline",
    "call_hook",
    "check_transformer",
    "construct",
    "create_app",
    "endpoint_tensors",
    "load_predictor",
    "load_transformer",
    "overrides",
    "predictor_metadata",
    "server_version",
    "to_batch",
    "unknown_args",
]
