"""The Ray handle sink with a fake handle: chunks, back-pressure, errors carried across the hop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from ray.serve.exceptions import BackPressureError

from pipelines._ray import HandleSink
from pipelines.batching import HOP_CHUNK_BYTES, Failure, chunk_rows
from pipelines.errors import InvalidInput, ServerOverloaded


class FakeMethod:
    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.calls: list[int] = []

    def remote(self, batch: Any) -> Any:
        self.calls.append(len(batch))

        async def answer() -> Any:
            return self.fn(batch)

        return answer()


class FakeHandle:
    def __init__(self, fn: Any) -> None:
        self.predict = FakeMethod(fn)


async def test_big_batches_cross_in_chunks_and_come_back_in_order() -> None:
    x = np.arange(2 * HOP_CHUNK_BYTES // 8 + 2, dtype=np.float64).reshape(-1, 2)  # just over 2 chunks
    handle = FakeHandle(lambda b: b[:, 0] * 2)
    out = await HandleSink(handle).predict(x)
    assert len(handle.predict.calls) == 3 and sum(handle.predict.calls) == len(x)
    np.testing.assert_array_equal(out, x[:, 0] * 2)
    small = FakeHandle(lambda b: b[:, 0])
    await HandleSink(small).predict(x[:10])
    assert small.predict.calls == [10]


def test_chunk_rows_dataframes_and_single_rows() -> None:
    df = pd.DataFrame({"a": np.zeros(100_000), "b": np.ones(100_000)})  # 1.6 MB
    parts = chunk_rows(df, max_bytes=500_000)
    assert [len(p) for p in parts] == [25_000] * 4 and list(pd.concat(parts).index) == list(df.index)
    one_wide_row = np.zeros((1, 1_000_000))
    assert len(chunk_rows(one_wide_row, max_bytes=1000)) == 1


async def test_back_pressure_is_503_and_failures_keep_their_class() -> None:
    def overloaded(batch: Any) -> Any:
        raise BackPressureError(num_queued_requests=3, max_queued_requests=3)

    with pytest.raises(ServerOverloaded, match="predictor overloaded"):
        await HandleSink(FakeHandle(overloaded)).predict(np.zeros((1, 5)))
    failing = FakeHandle(lambda b: Failure(InvalidInput("instances[0]: bad")))
    with pytest.raises(InvalidInput, match="instances\\[0\\]: bad") as info:
        await HandleSink(failing).predict(np.zeros((1, 5)))
    assert info.value.status_code == 400
