"""Rows of many requests through few model calls: merge/split helpers, the ingress
:class:`Coalescer`, and the predictor-side :func:`predict_many` and :class:`InlineOrThread`."""

from pipelines.batching.coalesce import Coalescer
from pipelines.batching.rows import (
    HOP_CHUNK_BYTES,
    Failure,
    InlineOrThread,
    chunk_rows,
    concat,
    kind_of,
    nbytes_of,
    predict_many,
    run_one,
    split_rows,
)

__all__ = [
    "HOP_CHUNK_BYTES",
    "chunk_rows",
    "nbytes_of",
    "Coalescer",
    "Failure",
    "InlineOrThread",
    "concat",
    "kind_of",
    "predict_many",
    "run_one",
    "split_rows",
]
