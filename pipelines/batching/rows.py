"""Run many requests' batches through one ``predict`` call, failing only the bad ones.

Used on both sides of the hop: the ingress :class:`~pipelines.batching.Coalescer`
merges rows of concurrent requests, and the predictor replica merges the calls of
several ingress replicas again (``@serve.batch``).

Example::

    results = predict_many(model.predict, [np.zeros((1, 5)), np.ones((3, 5))])
    # -> [array of 1 row, array of 3 rows]  (or a Failure in place of a bad one)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import ISVCError, PredictorError

__all__ = [
    "HOP_CHUNK_BYTES",
    "Failure",
    "InlineOrThread",
    "chunk_rows",
    "concat",
    "kind_of",
    "nbytes_of",
    "predict_many",
    "run_one",
    "split_rows",
]

INLINE_BELOW_S = 0.002
"""Model calls that take less than this (moving average) run on the event loop itself."""


@dataclass(frozen=True)
class Failure:
    """An error carried as a value across a replica hop; it keeps its class and status.

    ``@serve.batch`` answers every caller of a batch, so a bad caller's error travels
    as a value instead of failing the others.
    """

    error: ISVCError

    @classmethod
    def of(cls, exc: BaseException, hook: str = "predict") -> Failure:
        if isinstance(exc, ISVCError):
            return cls(exc)
        return cls(PredictorError(f"{hook} raised {type(exc).__name__}: {exc}"))

    @property
    def status(self) -> int:
        return self.error.status_code

    @property
    def message(self) -> str:
        return self.error.message

    def to_error(self) -> ISVCError:
        return self.error


def kind_of(batch: Any) -> tuple[Any, ...]:
    """Batches of one kind can be concatenated row-wise."""
    if isinstance(batch, pd.DataFrame):
        return ("df", tuple(batch.columns))
    arr = np.asarray(batch)
    return ("nd", arr.shape[1:], arr.dtype.str)


def concat(batches: list[Any]) -> Any:
    if isinstance(batches[0], pd.DataFrame):
        return pd.concat(batches, ignore_index=True)
    return np.concatenate(batches, axis=0)


def split_rows(out: Any, sizes: list[int]) -> list[Any]:
    """Cut ``out`` back into per-request parts of ``sizes`` rows."""
    total = sum(sizes)
    if len(out) != total:
        raise PredictorError(f"predictor returned {len(out)} rows for {total} input rows")
    bounds = np.cumsum([0, *sizes])
    if isinstance(out, pd.DataFrame):
        return [out.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    out = np.asarray(out)
    return [out[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


HOP_CHUNK_BYTES = 3 * 2**20
"""A batch bigger than this crosses the replica hop as concurrent chunks of at most this size:
``benchmarks/hop_chunks.py`` measured 200,000 rows (7.6 MiB) as 2-4 concurrent chunks at
0.77-0.85x the time of one whole call (8-16 chunks: 1.0-1.6x)."""


def nbytes_of(batch: Any) -> int:
    """The payload size of a batch (a DataFrame's object columns count as pointers)."""
    if isinstance(batch, pd.DataFrame):
        return int(batch.memory_usage(index=False, deep=False).sum())
    return int(getattr(batch, "nbytes", 0))


def chunk_rows(batch: Any, max_bytes: int = HOP_CHUNK_BYTES) -> list[Any]:
    """``batch`` cut into the fewest row chunks of at most ``max_bytes`` each (itself when small).

    >>> [len(c) for c in chunk_rows(np.zeros((1000, 100)), max_bytes=300_000)]
    [333, 334, 333]
    """
    size, n = nbytes_of(batch), len(batch)
    if size <= max_bytes or n < 2:
        return [batch]
    k = min(n, -(-size // max_bytes))
    bounds = np.linspace(0, n, k + 1).round().astype(int)
    if isinstance(batch, pd.DataFrame):
        return [batch.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return [batch[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def run_one(predict: Callable[[Any], Any], batch: Any) -> Any:
    """``predict(batch)`` with any exception turned into a :class:`Failure`."""
    try:
        return predict(batch)
    except Exception as exc:  # noqa: BLE001 - carried back as a value
        return Failure.of(exc)


def predict_many(predict: Callable[[Any], Any], batches: list[Any]) -> list[Any]:
    """One ``predict`` call per kind of batch; on failure, each batch of that kind alone."""
    results: list[Any] = [None] * len(batches)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, b in enumerate(batches):
        groups.setdefault(kind_of(b), []).append(i)
    for idx in groups.values():
        if len(idx) == 1:
            results[idx[0]] = run_one(predict, batches[idx[0]])
            continue
        try:
            parts = split_rows(predict(concat([batches[i] for i in idx])), [len(batches[i]) for i in idx])
        except Exception:  # noqa: BLE001 - retried one by one below
            for i in idx:
                results[i] = run_one(predict, batches[i])
            continue
        for i, part in zip(idx, parts, strict=True):
            results[i] = part
    return results


class InlineOrThread:
    """Run a blocking call on a worker thread, or inline when it has proven to be short.

    A thread hand-off costs ~0.1-0.3 ms of CPU and latency; a 256-row scikit-learn call
    takes about as long. Calls whose moving-average duration stays under ``inline_below_s``
    run on the event loop; a call that grows slower moves back to the thread. The first
    calls always run on the thread, so a slow model never blocks the loop before it is timed.
    ``inline_below_s=0`` keeps every call on the thread.

    Example::

        run = InlineOrThread()
        out = await run(predict_many, model.predict, batches)
    """

    def __init__(self, inline_below_s: float = INLINE_BELOW_S, warmup_calls: int = 3) -> None:
        self.inline_below_s = inline_below_s
        self.avg_s: float | None = None
        self._warmup = warmup_calls

    @property
    def inline(self) -> bool:
        return self._warmup <= 0 and self.avg_s is not None and self.avg_s < self.inline_below_s

    def _timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            took = time.perf_counter() - start
            self.avg_s = took if self.avg_s is None else 0.8 * self.avg_s + 0.2 * took
            self._warmup -= 1

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.inline:
            return self._timed(fn, *args)
        return await asyncio.to_thread(self._timed, fn, *args)
