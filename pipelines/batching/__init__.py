"""Rows of many requests through few model calls: merge/split helpers, the ingress
:class:`Coalescer`, and the predictor-side :func:`predict_many` and :class:`InlineOrThread`."""

from pipelines.batching.coalesce import Coalescer
from pipelines.batching.rows import (
    HOP_CHUNK_BYTES,
    Failure,
    chunk_rows,
    InlineOrThread,
    concat,
    kind_of,
    predict_many,
    run_one,
    split_rows,
)

__all__ = [
    "Coalescer",
    "Failure",
    "InlineOrThread",
    "concat",
    "kind_of",
    "predict_many",
    "run_one",
    "split_rows",
]
